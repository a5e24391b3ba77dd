/**
 * English and Traditional Chinese (Hong Kong) for every string the web client shows.
 * `translate(lang, key, params)` fills `{name}` placeholders; a key missing in either
 * language is a test failure (test/messages.test.js), never a blank on screen.
 */
import { MESSAGES } from './messages.js';

export const LANGUAGES = [
  { code: 'en', label: 'English' },
  { code: 'zh-HK', label: '繁體中文' },
];

export function translate(lang, key, params = {}) {
  const table = MESSAGES[lang] ?? MESSAGES.en;
  const template = table[key] ?? MESSAGES.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? `{${name}}`).toString());
}

/** The language to start in: a stored choice, else the browser's, else English. */
export function initialLanguage(storage = globalThis.localStorage, navigatorLanguages = globalThis.navigator?.languages ?? []) {
  const stored = storage?.getItem?.('hub-language');
  if (stored && MESSAGES[stored]) return stored;
  return navigatorLanguages.some((l) => /^zh(-(HK|Hant|TW|MO))?/i.test(l)) ? 'zh-HK' : 'en';
}

export function formatBytes(lang, n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${new Intl.NumberFormat(lang, { maximumFractionDigits: unit ? 1 : 0 }).format(value)} ${units[unit]}`;
}

export function formatTime(lang, iso) {
  if (!iso) return '';
  const date = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Asia/Hong_Kong' }).format(date);
}
