// A real OpenID Provider for the social-login tests: panva's oidc-provider (a certified
// OpenID Provider implementation), with one registered client and the development
// interactions (a login form that accepts any password, then a consent form).
//
// Usage: node server.js  (environment: IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URIS
// as a space-separated list). It listens on a free loopback port and prints one JSON line,
// {"issuer": "http://127.0.0.1:<port>"}, once it is ready.
//
// Accounts: the login name is the email. A login starting with "unverified." gets
// email_verified: false (the rest is the email); every other login gets true.
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: process.env.IDP_CLIENT_ID || 'atrium',
        client_secret: process.env.IDP_CLIENT_SECRET || 'atrium-test-secret',
        redirect_uris: (process.env.IDP_REDIRECT_URIS || '').split(' ').filter(Boolean),
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { methods: ['S256'], required: () => true },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    cookies: { keys: ['atrium-test-idp-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      const unverified = id.startsWith('unverified.');
      const email = unverified ? id.slice('unverified.'.length) : id;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email, email_verified: !unverified, name: `Test ${email.split('@')[0]}` };
        },
      };
    },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
