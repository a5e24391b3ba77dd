// The session's lifecycle with the pool stubbed out: a sign-out (idle, by the user) is
// final even when a refresh is in flight, and a failed refresh ends only its own session.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AuthSession } from '../src/auth/session.js';

const CONFIG = { userPoolId: 'ap-east-1_Synthetic1', clientId: 'synthetic-client', maxTokenAgeSeconds: 900, idleTimeoutSeconds: 900 };

function fakeTimers() {
  let next = 1;
  const pending = new Map();
  return {
    pending,
    setTimeout(fn, ms) {
      const id = next++;
      pending.set(id, { fn, ms });
      return id;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
  };
}

function fakeTokens(issuedAt) {
  const token = { getIssuedAt: () => issuedAt, getExpiration: () => issuedAt + 3600, getJwtToken: () => `jwt-${issuedAt}` };
  return { getAccessToken: () => token, getRefreshToken: () => ({ token: 'refresh' }) };
}

/** A session signed in with a user whose refreshes wait until the test answers them. */
function signedIn() {
  const timers = fakeTimers();
  const now = 1_800_000_000_000;
  const session = new AuthSession(CONFIG, { now: () => now, timers });
  const answers = [];
  session._user = {
    refreshSession: (_token, callback) => answers.push(callback),
    signOut: () => {},
  };
  session._established(fakeTokens(now / 1000));
  return { session, timers, answers, now };
}

test('a refresh answered after an idle sign-out does not bring the session back', async () => {
  const { session, answers, now } = signedIn();
  const events = [];
  session.onChange((e) => events.push(e));
  const refreshing = session.refresh();
  session.signOut('idle');
  assert.equal(session.signedIn, false);
  answers[0](null, fakeTokens(now / 1000 + 840));
  await assert.rejects(refreshing, { code: 'NoSession' });
  assert.equal(session.signedIn, false);
  assert.equal(session.accessToken(), null);
  assert.deepEqual(events.map((e) => [e.signedIn, e.reason]), [[false, 'idle']]);
});

test('the refresh timer of a signed-out session neither throws nor signs anyone in', async () => {
  const { session, timers } = signedIn();
  const [refresh] = [...timers.pending.values()].filter((t) => t.ms < 900_000);
  session.signOut('idle');
  assert.equal(timers.pending.size, 0, 'sign-out clears its timers');
  refresh.fn(); // a timer that fired anyway (already queued): rejects quietly
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(session.signedIn, false);
});

test('a refresh answered in time keeps the session and schedules the next one', async () => {
  const { session, answers, timers, now } = signedIn();
  const refreshing = session.refresh();
  answers[0](null, fakeTokens(now / 1000 + 10));
  await refreshing;
  assert.equal(session.signedIn, true);
  assert.equal(session.accessToken(), `jwt-${now / 1000 + 10}`);
  assert.ok([...timers.pending.values()].some((t) => t.ms < 900_000), 'next refresh scheduled');
});

test('a failed refresh signs its own session out', async () => {
  const { session, timers, answers } = signedIn();
  const refresh = [...timers.pending.values()].find((t) => t.ms < 900_000);
  refresh.fn();
  answers[0](new Error('NotAuthorizedException'), null);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(session.signedIn, false);
});
