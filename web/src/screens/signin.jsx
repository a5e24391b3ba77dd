/** Sign-in: username and password (SRP), then the authenticator code (TOTP); a first
 * sign-in shows the secret to enrol an authenticator app with, then asks for its code. */
import { useState } from 'preact/hooks';

import { Field, Page, Problem, useAction } from '../ui/components.jsx';
import { useHub } from '../ui/context.js';

export function SignIn({ notice }) {
  const { t, session } = useHub();
  const [step, setStep] = useState({ step: 'password' });
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const action = useAction();

  const submitPassword = (event) => {
    event.preventDefault();
    action.run(async () => {
      const next = await session.signIn(username.trim(), password);
      setPassword('');
      setCode('');
      setStep(next);
    });
  };
  const submitCode = (event) => {
    event.preventDefault();
    action.run(async () => {
      const next = step.step === 'enrol' ? await session.confirmEnrolment(code.trim()) : await session.answerTotp(code.trim());
      setStep(next);
    });
  };
  const codeField = (
    <Field label={t('signin.code')} hint={t('signin.code.hint')}>
      {(props) => (
        <input
          {...props}
          name="code"
          inputMode="numeric"
          autoComplete="one-time-code"
          pattern="[0-9]{6}"
          maxLength={6}
          required
          value={code}
          onInput={(e) => setCode(e.currentTarget.value)}
        />
      )}
    </Field>
  );

  return (
    <Page title={t('signin.title')}>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {step.step === 'password' && (
        <form onSubmit={submitPassword} class="form narrow" aria-describedby="signin-intro">
          <p id="signin-intro">{t('signin.intro')}</p>
          <Field label={t('signin.username')}>
            {(props) => (
              <input {...props} name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
            )}
          </Field>
          <Field label={t('signin.password')}>
            {(props) => (
              <input
                {...props}
                name="password"
                type="password"
                autoComplete="current-password"
                required
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
              />
            )}
          </Field>
          <button type="submit" disabled={action.pending}>
            {action.pending ? t('signin.working') : t('signin.submit')}
          </button>
        </form>
      )}
      {step.step === 'totp' && (
        <form onSubmit={submitCode} class="form narrow">
          <p>{t('signin.totp.intro')}</p>
          {codeField}
          <button type="submit" disabled={action.pending}>
            {t('signin.verify')}
          </button>
        </form>
      )}
      {step.step === 'enrol' && (
        <form onSubmit={submitCode} class="form narrow">
          <h2>{t('signin.enrol.title')}</h2>
          <p>{t('signin.enrol.intro')}</p>
          <p>
            {t('signin.enrol.secret')} <code id="totp-secret" class="secret">{step.secret}</code>
          </p>
          <p class="hint">
            {t('signin.enrol.uri')} <code class="uri">{step.uri}</code>
          </p>
          {codeField}
          <button type="submit" disabled={action.pending}>
            {t('signin.enrol.submit')}
          </button>
        </form>
      )}
      <Problem error={action.error} />
    </Page>
  );
}
