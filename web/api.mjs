/* The REST client: requests with the token, asked once and kept in sessionStorage. */
import { $, API, TOKEN_KEY, str } from './util.mjs';

export function apiErrorText(e) {
	if (!(e instanceof ApiError)) return [String(e && e.message ? e.message : e), ''];
	const what = e.status ? `${e.method} ${e.path}: ${e.status} ${e.error}` : `${e.method} ${e.path}: ${e.error}`;
	return [what, e.detail];
}

/* ---- REST, with the token asked once and kept in sessionStorage ---- */
export class ApiError extends Error {
	constructor(method, path, status, error, detail) {
		super(`${method} ${path}: ${status} ${error}`);
		Object.assign(this, { method, path, status, error, detail });
	}
}

let tokenPrompt = null; /* one dialog at a time, shared by concurrent requests */

export function askToken(why) {
	if (tokenPrompt) return tokenPrompt;
	const dlg = $('token-dialog');
	const input = $('token-input');
	$('token-why').textContent = why;
	input.value = '';
	tokenPrompt = new Promise((resolve) => {
		const done = (value) => {
			dlg.removeEventListener('close', onClose);
			$('token-cancel').removeEventListener('click', onCancel);
			if (dlg.open) dlg.close();
			tokenPrompt = null;
			resolve(value);
		};
		const onClose = () => done(dlg.returnValue === 'ok' && input.value ? input.value : null);
		const onCancel = () => {
			dlg.returnValue = 'cancel';
			dlg.close();
		};
		dlg.addEventListener('close', onClose);
		$('token-cancel').addEventListener('click', onCancel);
		dlg.returnValue = '';
		dlg.showModal();
		input.focus();
	});
	return tokenPrompt;
}

export function showTokenButton() {
	$('forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
}

export async function api(method, path, body) {
	const url = API + path;
	for (let attempt = 0;; attempt++) {
		const headers = { Accept: 'application/json' };
		if (body !== undefined) headers['Content-Type'] = 'application/json';
		const token = sessionStorage.getItem(TOKEN_KEY);
		if (token) headers.Authorization = 'Bearer ' + token;
		let res;
		try {
			res = await fetch(url, {
				method,
				headers,
				body: body === undefined ? undefined : JSON.stringify(body),
				cache: 'no-store',
			});
		} catch (e) {
			throw new ApiError(method, '/' + url, 0, 'the coordinator did not answer', String(e.message || e));
		}
		const text = await res.text();
		let data = null;
		try {
			data = text ? JSON.parse(text) : null;
		} catch (e) {
			data = null;
		}
		if (res.status === 401 && attempt < 2) {
			if (token) sessionStorage.removeItem(TOKEN_KEY);
			const t = await askToken(token ? 'The coordinator refused the token; enter it again.'
				: 'The coordinator needs its API token for this.');
			if (t) {
				sessionStorage.setItem(TOKEN_KEY, t.trim());
				showTokenButton();
				continue;
			}
		}
		showTokenButton();
		if (!res.ok) {
			const err = data && typeof data === 'object' ? data : {};
			throw new ApiError(method, '/' + url, res.status, str(err.error) || res.statusText || 'error',
				str(err.detail) || (data ? '' : text.slice(0, 200)));
		}
		return data;
	}
}
