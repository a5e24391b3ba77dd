// Both languages carry every string: the same keys in English and Traditional Chinese,
// every literal key the screens use, and every code the service may send for the keys
// the screens build from codes.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { MESSAGES } from '../src/i18n/messages.js';
import { translate } from '../src/i18n/index.js';

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : /\.(jsx?|mjs)$/.test(name) ? [path] : [];
  });
}

const SRC = new URL('../src/', import.meta.url).pathname;

test('English and Traditional Chinese have the same keys, none empty', () => {
  const en = Object.keys(MESSAGES.en).sort();
  const zh = Object.keys(MESSAGES['zh-HK']).sort();
  assert.deepEqual(zh, en);
  for (const lang of ['en', 'zh-HK']) {
    for (const [key, value] of Object.entries(MESSAGES[lang])) assert.ok(value.trim(), `${lang} ${key} is empty`);
  }
});

test('the Chinese strings are in Chinese', () => {
  const untranslated = Object.keys(MESSAGES.en).filter((k) => MESSAGES['zh-HK'][k] === MESSAGES.en[k] && /[A-Za-z]{4}/.test(MESSAGES.en[k]));
  assert.deepEqual(untranslated, []);
});

test('every literal key the screens use exists', () => {
  const missing = new Set();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/\bt\('([A-Za-z0-9_.-]+)'/g)) {
      if (!(match[1] in MESSAGES.en)) missing.add(`${match[1]} (${file.slice(SRC.length)})`);
    }
    for (const match of text.matchAll(/'((?:nav|signin)\.[A-Za-z.]+)'/g)) {
      if (!(match[1] in MESSAGES.en)) missing.add(`${match[1]} (${file.slice(SRC.length)})`);
    }
  }
  assert.deepEqual([...missing], []);
});

// The codes the service sends for keys built as `prefix.${code}` (app/ schemas and enums).
const CODES = {
  category: ['imaging', 'laboratory', 'clinical-note', 'report', 'referral', 'other'],
  shred: ['retention_expired', 'patient_request', 'entered_in_error', 'legal_order'],
  role: ['lead', 'member', 'invited_expert'],
  membership: ['invited', 'active', 'left', 'removed'],
  status: ['open', 'closed'],
  versionStatus: ['active', 'shredded'],
  urgency: ['emergency', 'urgent', 'routine'],
  basis: ['referral_for_care', 'emergency'],
  notice: ['informed', 'consented', 'none'],
  referralStatus: ['requested', 'accepted', 'declined', 'cancelled', 'completed'],
  decline: ['no_capacity', 'not_indicated', 'wrong_specialty', 'more_information_needed', 'patient_declined', 'other'],
  userRole: ['doctor', 'specialist', 'institution_admin', 'auditor', 'platform_admin'],
  rejection: ['identity_not_confirmed', 'not_practising_here', 'duplicate', 'other'],
  affiliationStatus: ['active', 'removed'],
  institutionStatus: ['admitted', 'suspended', 'removed'],
  registerStatus: ['active', 'suspended', 'removed'],
  // identity refusals (docs/identity.md) a doctor or an admin meets on these screens
  error: ['affiliation_removed', 'affiliation_missing', 'account_not_enrolled', 'registration_pending', 'registration_rejected', 'institution_not_admitted', 'no_role', 'not_on_register', 'registration_suspended', 'registration_removed', 'reg_no_already_bound', 'conflict'],
  period: ['day', 'week', 'all'],
  'upload.phase': ['sealing', 'uploading', 'committing'],
  'referrals': ['incoming.caption', 'outgoing.caption'],
  'audit.failure': ['RootMismatch', 'BadSignature', 'InvalidProofLength', 'InvalidHashLength', 'IndexOutOfRange', 'MalformedHead', 'BadPublicKey'],
};

test('every code-built key exists in both languages', () => {
  const missing = [];
  for (const [prefix, codes] of Object.entries(CODES)) {
    for (const code of codes) {
      for (const lang of ['en', 'zh-HK']) {
        if (!(`${prefix}.${code}` in MESSAGES[lang])) missing.push(`${lang} ${prefix}.${code}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});

test('placeholders are filled', () => {
  assert.equal(translate('en', 'record.versionN', { version: 3 }), 'version 3');
  assert.equal(translate('zh-HK', 'record.versionN', { version: 3 }), '第 3 版');
});
