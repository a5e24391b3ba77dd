/** Entry point: read the deployment's config.json (served beside this bundle by the
 * same origin), then start the app. The API is this origin's stage root unless the
 * config names another. */
import { render } from 'preact';

import { HubApi } from './api/client.js';
import { App } from './app.jsx';
import { AuthSession } from './auth/session.js';
import { initialLanguage } from './i18n/index.js';
import './styles.css';

async function start() {
  const root = document.getElementById('app');
  try {
    const response = await fetch(new URL('config.json', document.baseURI), { cache: 'no-store' });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    const config = await response.json();
    const apiBase = new URL(config.apiBaseUrl || '..', document.baseURI).href;
    const session = new AuthSession(config);
    const api = new HubApi(apiBase, session);
    let storage = null;
    try {
      storage = window.localStorage; // the language choice only; never a token
    } catch {
      storage = null;
    }
    root.replaceChildren();
    render(<App config={config} session={session} api={api} initialLang={initialLanguage(storage)} storage={storage} />, root);
  } catch (error) {
    const p = document.createElement('p');
    p.setAttribute('role', 'alert');
    p.textContent = `The Health Collaboration Hub could not start (${error.message}). 醫療協作平台無法啟動。`;
    root.replaceChildren(p);
  }
}

start();
