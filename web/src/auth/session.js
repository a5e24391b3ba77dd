/**
 * Sign-in against the hub's Cognito user pool, as the deployed app client allows it:
 * SRP (`USER_SRP_AUTH`, computed by amazon-cognito-identity-js: the password never leaves
 * the browser) and then TOTP (a first sign-in enrols an authenticator, `MFA_SETUP`;
 * later ones answer `SOFTWARE_TOKEN_MFA`).
 *
 * Guarantees:
 * - tokens live in this module's memory only: the library is given a storage object
 *   backed by a Map, so nothing reaches localStorage, sessionStorage or cookies, and a
 *   reload signs the user out;
 * - the session is refreshed with the refresh token before the access token is older
 *   than the service accepts (`maxTokenAgeSeconds`, the app client's declared validity);
 * - after `idleTimeoutSeconds` without keyboard or pointer activity the user is signed
 *   out and every token is dropped;
 * - a sign-out is final: a refresh still in flight when it happens (the pool answers
 *   after the idle timeout, say) is discarded, never bringing the session back.
 */

import {
  AuthenticationDetails,
  CognitoUser,
  CognitoUserPool,
} from 'amazon-cognito-identity-js';

/** Storage in memory only (the library's Storage interface). */
export class MemoryStorage {
  constructor() {
    this._items = new Map();
  }
  setItem(key, value) {
    this._items.set(key, String(value));
  }
  getItem(key) {
    return this._items.has(key) ? this._items.get(key) : null;
  }
  removeItem(key) {
    this._items.delete(key);
  }
  clear() {
    this._items.clear();
  }
}

export class SignInError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SignInError';
    this.code = code;
  }
}

function failure(err) {
  const code = err?.code || err?.name || 'SignInFailed';
  return new SignInError(code, err?.message || String(err));
}

/** The otpauth URI an authenticator app takes for a new TOTP secret (RFC 6238 app). */
export function otpauthUri(secret, username, issuer = 'Health Collaboration Hub') {
  const label = encodeURIComponent(`${issuer}:${username}`);
  return `otpauth://totp/${label}?secret=${secret}&issuer=${encodeURIComponent(issuer)}`;
}

/**
 * One user's sign-in and session. Listeners get `{signedIn, reason}` on every change.
 */
export class AuthSession {
  /**
   * @param {object} config from config.json: region, userPoolId, clientId, cognitoEndpoint,
   *   maxTokenAgeSeconds, idleTimeoutSeconds
   */
  constructor(config, { now = () => Date.now(), timers = globalThis } = {}) {
    this._config = config;
    this._now = now;
    this._timers = timers;
    this._storage = new MemoryStorage();
    this._pool = new CognitoUserPool({
      UserPoolId: config.userPoolId,
      ClientId: config.clientId,
      endpoint: config.cognitoEndpoint || undefined,
      Storage: this._storage,
    });
    this._user = null;
    this._session = null;
    this._listeners = new Set();
    this._refreshTimer = null;
    this._idleTimer = null;
    this._pending = null;
    // bumped by every sign-out (and so by every new sign-in): a refresh started under an
    // older epoch answers into nothing
    this._epoch = 0;
    this.username = '';
  }

  onChange(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  _emit(reason) {
    for (const listener of this._listeners) listener({ signedIn: this.signedIn, reason });
  }

  get signedIn() {
    return this._session !== null;
  }

  /** The current access token (memory only). */
  accessToken() {
    return this._session ? this._session.getAccessToken().getJwtToken() : null;
  }

  /**
   * Start signing in; resolves to the next step: `{step: 'totp'}` (enter a code),
   * `{step: 'enrol', secret, uri}` (set up an authenticator first) or `{step: 'done'}`.
   * @throws {SignInError}
   */
  signIn(username, password) {
    this.signOut('restart');
    const user = new CognitoUser({ Username: username, Pool: this._pool, Storage: this._storage });
    user.setAuthenticationFlowType('USER_SRP_AUTH');
    this._user = user;
    this.username = username;
    return new Promise((resolve, reject) => {
      user.authenticateUser(new AuthenticationDetails({ Username: username, Password: password }), {
        onSuccess: (session) => resolve(this._established(session)),
        onFailure: (err) => reject(failure(err)),
        totpRequired: () => resolve({ step: 'totp' }),
        mfaRequired: () => reject(new SignInError('UnsupportedMfa', 'SMS codes are not used by the hub')),
        newPasswordRequired: () => reject(new SignInError('NewPasswordRequired', 'A new password must be set first')),
        mfaSetup: () => {
          user.associateSoftwareToken({
            associateSecretCode: (secret) => resolve({ step: 'enrol', secret, uri: otpauthUri(secret, username) }),
            onFailure: (err) => reject(failure(err)),
          });
        },
      });
    });
  }

  /** Answer the TOTP challenge with a 6-digit code. @throws {SignInError} */
  answerTotp(code) {
    const user = this._requireUser();
    return new Promise((resolve, reject) => {
      user.sendMFACode(
        code,
        { onSuccess: (session) => resolve(this._established(session)), onFailure: (err) => reject(failure(err)) },
        'SOFTWARE_TOKEN_MFA',
      );
    });
  }

  /** Finish enrolling the authenticator with its first code. @throws {SignInError} */
  confirmEnrolment(code) {
    const user = this._requireUser();
    return new Promise((resolve, reject) => {
      user.verifySoftwareToken(code, 'hub-web', {
        onSuccess: (session) => resolve(this._established(session)),
        onFailure: (err) => reject(failure(err)),
      });
    });
  }

  _requireUser() {
    if (!this._user) throw new SignInError('NoSignIn', 'Start by signing in');
    return this._user;
  }

  _established(session) {
    this._session = session;
    this._scheduleRefresh();
    this._touch();
    this._emit('signed-in');
    return { step: 'done' };
  }

  _tokenLifetimeMs() {
    const token = this._session.getAccessToken();
    const issued = token.getIssuedAt() * 1000;
    const expires = token.getExpiration() * 1000;
    const declared = (this._config.maxTokenAgeSeconds || 900) * 1000;
    return Math.min(expires - issued, declared) - (this._now() - issued);
  }

  _scheduleRefresh() {
    this._timers.clearTimeout(this._refreshTimer);
    // refresh a minute early (or at half-life for short tokens)
    const remaining = this._tokenLifetimeMs();
    const delay = Math.max(1000, Math.min(remaining - 60_000, remaining / 2));
    const epoch = this._epoch;
    this._refreshTimer = this._timers.setTimeout(() => {
      this.refresh().catch(() => {
        // a failed refresh ends this session, not one started since
        if (epoch === this._epoch) this.signOut('refresh-failed');
      });
    }, delay);
  }

  /** Exchange the refresh token for fresh tokens now. */
  refresh() {
    const user = this._user;
    const token = this._session?.getRefreshToken();
    if (!user || !token) return Promise.reject(new SignInError('NoSession', 'Not signed in'));
    const epoch = this._epoch;
    return new Promise((resolve, reject) => {
      user.refreshSession(token, (err, session) => {
        if (epoch !== this._epoch) {
          // signed out while the pool was answering: drop what the library cached
          if (!this._session) this._storage.clear();
          return reject(new SignInError('NoSession', 'Signed out during the refresh'));
        }
        if (err) return reject(failure(err));
        this._session = session;
        this._scheduleRefresh();
        this._emit('refreshed');
        return resolve();
      });
    });
  }

  /** Record user activity (keyboard, pointer): postpones the idle sign-out. */
  _touch() {
    if (!this._session) return;
    this._timers.clearTimeout(this._idleTimer);
    const idleMs = (this._config.idleTimeoutSeconds || 900) * 1000;
    this._idleTimer = this._timers.setTimeout(() => this.signOut('idle'), idleMs);
  }

  activity() {
    this._touch();
  }

  /** Drop every token and timer. */
  signOut(reason = 'signed-out') {
    const was = this.signedIn;
    this._epoch += 1;
    this._timers.clearTimeout(this._refreshTimer);
    this._timers.clearTimeout(this._idleTimer);
    if (this._user && this._session) {
      // local sign-out only: the library clears its (memory) cache
      this._user.signOut();
    }
    this._storage.clear();
    this._session = null;
    if (reason !== 'restart') this._user = null;
    if (was) this._emit(reason);
  }
}
