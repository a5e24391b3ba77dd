/** The application shell: skip link, header (language, who is signed in, sign out), the
 * navigation a role needs, and the screens, on hash routes (the site is static files
 * served from one path; no server-side routing is needed). */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Link, Redirect, Route, Router, Switch } from 'wouter-preact';
import { useHashLocation } from 'wouter-preact/use-hash-location';

import { LANGUAGES, formatBytes, formatTime, translate } from './i18n/index.js';
import { Audit } from './screens/audit.jsx';
import { Institution, Metrics } from './screens/admin.jsx';
import { GroupDetail, GroupList } from './screens/groups.jsx';
import { Inbox } from './screens/inbox.jsx';
import { PatientRecords, RecordDetail } from './screens/records.jsx';
import { NewReferral, ReferralDetail, ReferralList } from './screens/referrals.jsx';
import { SignIn } from './screens/signin.jsx';
import { Loading, Problem } from './ui/components.jsx';
import { HubContext } from './ui/context.js';

const NAV = {
  doctor: [
    ['/inbox', 'nav.inbox'],
    ['/groups', 'nav.groups'],
    ['/referrals', 'nav.referrals'],
  ],
  institution_admin: [
    ['/institution', 'nav.institution'],
    ['/metrics', 'nav.metrics'],
  ],
  auditor: [
    ['/audit', 'nav.audit'],
    ['/metrics', 'nav.metrics'],
  ],
  // affiliations and registrations of any institution (metrics are not theirs: Cedar)
  platform_admin: [['/institution', 'nav.institution']],
};

function navFor(roles) {
  const seen = new Map();
  for (const role of roles) {
    const key = role === 'specialist' ? 'doctor' : role;
    for (const [href, label] of NAV[key] ?? []) seen.set(href, label);
  }
  return [...seen.entries()];
}

function home(roles) {
  if (roles.includes('doctor') || roles.includes('specialist')) return '/inbox';
  if (roles.includes('institution_admin') || roles.includes('platform_admin')) return '/institution';
  if (roles.includes('auditor')) return '/audit';
  return '/none';
}

function NavLink({ href, children }) {
  const [location] = useHashLocation();
  const current = location === href || location.startsWith(`${href}/`);
  return (
    <Link href={href} aria-current={current ? 'page' : undefined}>
      {children}
    </Link>
  );
}

export function App({ config, session, api, initialLang, storage }) {
  const [lang, setLang] = useState(initialLang);
  const [signedIn, setSignedIn] = useState(session.signedIn);
  const [notice, setNotice] = useState(null);
  const [me, setMe] = useState(null);
  const [meError, setMeError] = useState(null);
  const main = useRef(null);
  const t = (key, params) => translate(lang, key, params);

  useEffect(() => {
    document.documentElement.lang = lang;
    storage?.setItem?.('hub-language', lang);
  }, [lang]);

  useEffect(
    () =>
      session.onChange(({ signedIn: now, reason }) => {
        setSignedIn(now);
        if (!now) {
          setMe(null);
          setNotice(reason === 'idle' ? 'signin.idle' : reason === 'expired' || reason === 'refresh-failed' ? 'signin.expired' : reason === 'signed-out' ? 'signin.out' : null);
          window.location.hash = '#/';
        }
      }),
    [session],
  );

  useEffect(() => {
    if (!signedIn) return undefined;
    const touch = () => session.activity();
    const events = ['keydown', 'pointerdown', 'wheel', 'touchstart'];
    events.forEach((e) => window.addEventListener(e, touch, { passive: true }));
    setMeError(null);
    api.get('/me').then(setMe, setMeError);
    return () => events.forEach((e) => window.removeEventListener(e, touch));
  }, [signedIn]);

  const value = useMemo(
    () => ({
      t,
      lang,
      config,
      session,
      api,
      me,
      formatTime: (iso) => formatTime(lang, iso),
      formatBytes: (n) => formatBytes(lang, n),
    }),
    [lang, me, signedIn],
  );

  const skip = (event) => {
    event.preventDefault();
    main.current?.focus();
  };

  return (
    <HubContext.Provider value={value}>
      <a class="skip-link" href="#main-content" onClick={skip}>
        {t('nav.skip')}
      </a>
      <header class="site-header">
        <p class="brand">{t('app.name')}</p>
        <div class="header-tools">
          <label class="language">
            <span>{t('nav.language')}</span>
            <select value={lang} onChange={(e) => setLang(e.currentTarget.value)}>
              {LANGUAGES.map((l) => (
                <option key={l.code} value={l.code} lang={l.code}>
                  {l.label}
                </option>
              ))}
            </select>
          </label>
          {signedIn && (
            <>
              <span class="who">{me ? t('nav.signedInAs', { name: me.reg_no ?? me.username, institution: me.institution }) : ''}</span>
              <button type="button" class="secondary" onClick={() => session.signOut('signed-out')}>
                {t('nav.signOut')}
              </button>
            </>
          )}
        </div>
        {signedIn && me && (
          <nav aria-label={t('nav.label')}>
            <ul>
              {navFor(me.roles).map(([href, label]) => (
                <li key={href}>
                  <NavLink href={href}>{t(label)}</NavLink>
                </li>
              ))}
            </ul>
          </nav>
        )}
      </header>
      <main id="main-content" tabIndex={-1} ref={main}>
        <Router hook={useHashLocation}>
          {!signedIn ? (
            <SignIn notice={notice ? t(notice) : null} />
          ) : meError ? (
            <Problem error={meError} />
          ) : !me ? (
            <Loading />
          ) : (
            <Switch>
              <Route path="/inbox" component={Inbox} />
              <Route path="/groups" component={GroupList} />
              <Route path="/groups/:id">{(p) => <GroupDetail id={p.id} />}</Route>
              <Route path="/patients/:id">{(p) => <PatientRecords id={p.id} />}</Route>
              <Route path="/records/:id">{(p) => <RecordDetail id={p.id} />}</Route>
              <Route path="/referrals" component={ReferralList} />
              <Route path="/referrals/new" component={NewReferral} />
              <Route path="/referrals/:id">{(p) => <ReferralDetail id={p.id} />}</Route>
              <Route path="/institution" component={Institution} />
              <Route path="/metrics" component={Metrics} />
              <Route path="/audit" component={Audit} />
              <Route path="/none">
                <p>{t('nav.noRole')}</p>
              </Route>
              <Route>
                <Redirect to={home(me.roles)} />
              </Route>
            </Switch>
          )}
        </Router>
      </main>
      <footer class="site-footer">
        <p>{t('app.footer')}</p>
      </footer>
    </HubContext.Provider>
  );
}
