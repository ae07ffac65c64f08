// Unit tests of src/model.js (what the page shows, from payloads and the time): node --test test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  readSettings,
  parsePayload,
  codeDeadline,
  formatCountdown,
  qrTarget,
  displayUrl,
  groupCode,
  presenceView,
  meetingsView,
  parseGraphTime,
  pickResources,
  view,
  isBrowserSignIn,
  isShowableCode,
  safeLink,
  shortUrl,
  urlPieces,
  signedOutView,
  topicsFor,
  POLICY_SENTENCE,
} from '../src/model.js';

const loc = (search, protocol = 'http:', hostname = 'gateway.local') => ({ search, protocol, hostname });

test('settings from the query string, with defaults', () => {
  const s = readSettings(loc('?account=kitchen'));
  assert.equal(s.account, 'kitchen');
  assert.equal(s.base, 'graph2mqtt');
  assert.equal(s.broker, 'ws://gateway.local:9001');
  assert.equal(s.version, 5);
  assert.equal(s.controls, true);
  assert.deepEqual(s.errors, []);
  assert.equal(readSettings(loc('?account=a', 'https:')).broker, 'wss://gateway.local:9001');
  const t = readSettings(loc('?account=hall&base=home/g2m&broker=ws://10.0.0.2:8080&username=d&password=p&controls=0&mqtt=4'));
  assert.deepEqual([t.base, t.broker, t.username, t.password, t.controls, t.version],
    ['home/g2m', 'ws://10.0.0.2:8080', 'd', 'p', false, 4]);
});

test('bad settings are reported', () => {
  assert.equal(readSettings(loc('?account=a/b')).errors.length, 1);
  assert.equal(readSettings(loc('?account=bridge')).errors.length, 1);
  assert.equal(readSettings(loc('?account=a&base=x/%23')).errors.length, 1);
  assert.equal(readSettings(loc('?account=a&broker=mqtt://h:1883')).errors.length, 1);
});

test('payloads: empty is cleared, non-objects are ignored', () => {
  assert.equal(parsePayload(new Uint8Array()), null);
  assert.equal(parsePayload(''), null);
  assert.equal(parsePayload('not json'), null);
  assert.equal(parsePayload('[1]'), null);
  assert.deepEqual(parsePayload(new TextEncoder().encode('{"state":"online"}')), { state: 'online' });
});

test('the code deadline prefers the MQTT 5 message expiry', () => {
  const code = { expires_at: '2026-11-26T19:19:05Z' };
  assert.equal(codeDeadline(code, 600, 1000), 601000);
  assert.equal(codeDeadline(code, undefined, 1000), Date.parse('2026-11-26T19:19:05Z'));
  assert.equal(codeDeadline({}, undefined, 1000), null);
});

test('countdown, URL and code formatting', () => {
  assert.equal(formatCountdown(845000), '14:05');
  assert.equal(formatCountdown(3723000), '1:02:03');
  assert.equal(formatCountdown(-5), '0:00');
  assert.equal(formatCountdown(1), '0:01');
  assert.equal(qrTarget({ verification_uri: 'https://a', verification_uri_complete: 'https://a?c=1' }), 'https://a?c=1');
  assert.equal(qrTarget({ verification_uri: 'https://a', verification_uri_complete: null }), 'https://a');
  assert.equal(displayUrl('https://microsoft.com/devicelogin'), 'microsoft.com/devicelogin');
  assert.deepEqual(groupCode('E4AAFX9VN'), ['E4A', 'AFX', '9VN']);
  assert.deepEqual(groupCode('ABCDEFGH'), ['ABCD', 'EFGH']);
  assert.deepEqual(groupCode('WDJB-MJHT'), ['WDJB-MJHT']);
});

test('presence', () => {
  assert.deepEqual(presenceView({ availability: 'Busy', activity: 'InAMeeting' }),
    { availability: 'Busy', label: 'Busy', colour: 'red', activity: 'In a meeting' });
  assert.equal(presenceView({ availability: 'Available', activity: 'Available' }).activity, '');
  assert.equal(presenceView({ availability: 'BeRightBack', activity: 'BeRightBack' }).colour, 'yellow');
  assert.equal(presenceView({ availability: 'Something' }).colour, 'grey');
  assert.equal(presenceView({ displayName: 'x' }), null);
});

test('meetings: UTC times, the ones not over, soonest first', () => {
  assert.equal(parseGraphTime({ dateTime: '2026-11-26T09:00:00.0000000', timeZone: 'UTC' }), Date.parse('2026-11-26T09:00:00Z'));
  const now = Date.parse('2026-11-26T10:10:00Z');
  const ev = (subject, start, end, extra = {}) => ({ subject, start: { dateTime: start, timeZone: 'UTC' }, end: { dateTime: end, timeZone: 'UTC' }, ...extra });
  const body = { value: [
    ev('later', '2026-11-26T12:00:00.0000000', '2026-11-26T12:30:00.0000000', { location: { displayName: 'Room 1' } }),
    ev('over', '2026-11-26T09:00:00.0000000', '2026-11-26T09:30:00.0000000'),
    ev('now', '2026-11-26T10:00:00.0000000', '2026-11-26T10:30:00.0000000'),
    ev('cancelled', '2026-11-26T11:00:00.0000000', '2026-11-26T11:30:00.0000000', { isCancelled: true }),
  ] };
  const m = meetingsView(body, now);
  assert.deepEqual(m.map((e) => [e.subject, e.now, e.location]), [['now', true, ''], ['later', false, 'Room 1']]);
  assert.equal(meetingsView({ value: [] }, now).length, 0);
  assert.equal(meetingsView({ availability: 'Busy' }, now), null);
});

test('resources are recognised by shape', () => {
  const graph = {
    status: { availability: 'Away' },
    agenda: { value: [{ start: { dateTime: '2026-11-26T10:00:00' } }] },
    me: { displayName: 'Adele Vance' },
  };
  assert.deepEqual(pickResources(graph), { presence: 'status', calendar: 'agenda', me: 'me' });
});

const base = { connection: 'connected', bridge: 'online', authState: null, authCode: null, codeDeadline: null, codeTotalMs: null, graph: {} };
const code = { user_code: 'E4AAFX9VN', verification_uri: 'https://microsoft.com/devicelogin', verification_uri_complete: null, expires_at: '2026-11-26T19:19:05Z', interval: 5 };

test('screens', () => {
  const now = Date.parse('2026-11-26T19:04:05Z');
  assert.equal(view({ ...base, connection: 'connecting' }, now).screen, 'connecting');
  assert.equal(view(base, now).screen, 'waiting');
  assert.equal(view({ ...base, authState: { state: 'signed_out', reason: 'declined' } }, now).reason, 'The sign-in was declined.');
  const c = view({ ...base, authState: { state: 'pending', code }, authCode: code, codeDeadline: now + 900000, codeTotalMs: 900000 }, now);
  assert.equal(c.screen, 'code');
  assert.equal(c.code.countdown, '15:00');
  assert.equal(c.code.qr, 'https://microsoft.com/devicelogin');
  assert.equal(c.code.expired, false);
  // auth/code cleared but auth/state still pending with the code: the state's copy is used.
  assert.equal(view({ ...base, authState: { state: 'pending', code } }, now).screen, 'code');
  // A renewal: pending, no code yet.
  assert.equal(view({ ...base, authState: { state: 'pending', code: null } }, now).screen, 'requesting');
  const expired = view({ ...base, authCode: code, codeDeadline: now - 1 }, now);
  assert.equal(expired.code.expired, true);
  const s = view({ ...base, authState: { state: 'signed_in', user: { name: 'Adele Vance', username: 'adele@contoso.com' } },
    graph: { presence: { availability: 'Busy', activity: 'InACall' } } }, now);
  assert.deepEqual([s.screen, s.name, s.username, s.presence.label, s.presence.activity, s.meetings],
    ['signed_in', 'Adele Vance', 'adele@contoso.com', 'Busy', 'In a call', null]);
  assert.equal(view({ ...base, bridge: 'offline', authState: { state: 'signed_in', user: null } }, now).agentOffline, true);
});

const SIGN_IN_URL = 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=1&response_type=code&state=abc&code_challenge=xyz&code_challenge_method=S256';
const browser = { method: 'browser', user_code: null, verification_uri: null, verification_uri_complete: null,
  sign_in_url: SIGN_IN_URL, message: 'To sign in, open ...', expires_at: '2026-11-26T19:19:05Z', interval: null };

test('a browser sign-in: the QR code is the sign_in_url, there is no code to type', () => {
  assert.equal(isBrowserSignIn(browser), true);
  assert.equal(isBrowserSignIn({ ...browser, sign_in_url: null }), false);
  assert.equal(isBrowserSignIn(code), false);
  assert.equal(isShowableCode(browser), true);
  assert.equal(isShowableCode(code), true);
  assert.equal(isShowableCode({ method: 'browser', sign_in_url: '' }), false);
  assert.equal(isShowableCode(null), false);
  assert.equal(qrTarget(browser), SIGN_IN_URL);
  // device_code with method set, as the contract's auth/code now carries it
  assert.equal(qrTarget({ ...code, method: 'device_code', sign_in_url: null }), 'https://microsoft.com/devicelogin');
  const now = Date.parse('2026-11-26T19:04:05Z');
  const v = view({ ...base, authState: { state: 'pending', code: browser }, authCode: browser, codeDeadline: now + 900000, codeTotalMs: 900000 }, now);
  assert.equal(v.screen, 'code');
  assert.deepEqual([v.code.method, v.code.userCode, v.code.qr, v.code.link, v.code.urlText, v.code.countdown],
    ['browser', '', SIGN_IN_URL, SIGN_IN_URL, 'login.microsoftonline.com/…', '15:00']);
  // auth/code cleared, auth/state still pending with its copy
  assert.equal(view({ ...base, authState: { state: 'pending', code: browser } }, now).code.method, 'browser');
  assert.equal(view({ ...base, authCode: { ...code, method: 'device_code' } }, now).code.method, 'device_code');
});

test('links and URL pieces', () => {
  assert.equal(safeLink('https://login.microsoftonline.com/x'), 'https://login.microsoftonline.com/x');
  assert.equal(safeLink('javascript:alert(1)'), '');
  assert.equal(safeLink('https://a b'), '');
  assert.equal(shortUrl('https://microsoft.com'), 'microsoft.com');
  assert.equal(shortUrl('https://login.example/a?b'), 'login.example/…');
  assert.deepEqual(urlPieces('microsoft.com/devicelogin'), ['microsoft.', 'com/', 'devicelogin']);
  assert.equal(urlPieces('a.b/c?d=e&f').join(''), 'a.b/c?d=e&f');
  assert.deepEqual(urlPieces(''), []);
});

test('the complete command\'s topics', () => {
  const t = topicsFor({ base: 'graph2mqtt', account: 'hall' });
  assert.equal(t.completeRequest, 'graph2mqtt/bridge/request/complete');
  assert.equal(t.completeResponse, 'graph2mqtt/bridge/response/complete');
});

const out = (reason, error = null) => ({ state: 'signed_out', reason, error });

test('why a sign-in ended: the tenant\'s policy', () => {
  for (const policy of ['security_defaults', 'conditional_access']) {
    const w = signedOutView(out('blocked', { error: 'invalid_request', description: 'AADSTS530035: Access has been blocked by security defaults.', policy }));
    assert.equal(w.text, 'Your organisation blocks sign-in with a code — ask your administrator, or use the browser sign-in.');
    assert.equal(w.text, POLICY_SENTENCE);
    assert.equal(w.detail, 'AADSTS530035: Access has been blocked by security defaults.');
    assert.equal(w.policy, true);
  }
  // blocked without an error object still says so, and offers the browser
  assert.deepEqual(signedOutView(out('blocked')), { text: 'Your organisation blocks this way of signing in. Ask your administrator.', detail: '', policy: true });
});

test('why a sign-in ended: an unknown tenant', () => {
  const a = signedOutView(out('error', { error: 'invalid_request', description: "AADSTS90002: Tenant 'contoso.example' not found. Check to make sure you have the correct tenant ID.", policy: null }));
  assert.equal(a.text, "Unknown tenant 'contoso.example'.");
  assert.match(a.detail, /AADSTS90002/);
  assert.equal(a.policy, false);
  const b = signedOutView(out('error', { error: 'invalid_request', description: "AADSTS900023: Specified tenant identifier 'not a tenant' is neither a valid DNS name, nor a valid external domain.", policy: null }));
  assert.equal(b.text, "Unknown tenant 'not a tenant'.");
  assert.equal(signedOutView(out('error', { error: 'invalid_request', description: 'AADSTS90002: Tenant not found.', policy: null })).text, 'Unknown tenant.');
  // 900021 is not 90002
  assert.notEqual(signedOutView(out('error', { error: 'x', description: "AADSTS900021: 'q'", policy: null })).text.slice(0, 7), 'Unknown');
});

test('why a sign-in ended: other errors say their description, reasons their line', () => {
  assert.equal(signedOutView(out('refresh_rejected', { error: 'invalid_grant', description: 'AADSTS70008: The refresh token has expired.', policy: null })).text,
    'AADSTS70008: The refresh token has expired.');
  assert.equal(signedOutView(out('error', { error: 'network_error', description: '', policy: null })).text, 'The sign-in failed (network_error).');
  const lines = {
    declined: 'The sign-in was declined.',
    code_expired: 'The sign-in expired before anyone finished it.',
    cancelled: 'The sign-in was cancelled.',
    logout: 'Signed out.',
    shutdown: 'The sign-in stopped when the agent shut down.',
  };
  const seen = new Set();
  for (const [reason, text] of Object.entries(lines)) {
    const w = signedOutView(out(reason));
    assert.deepEqual(w, { text, detail: '', policy: false });
    seen.add(w.text);
  }
  assert.equal(seen.size, 5);
  assert.equal(signedOutView(out(null)).text, 'Nobody is signed in on this screen yet.');
  const now = Date.parse('2026-11-26T19:04:05Z');
  const v = view({ ...base, authState: out('blocked', { error: 'x', description: 'AADSTS53003: blocked by Conditional Access.', policy: 'conditional_access' }) }, now);
  assert.deepEqual([v.screen, v.reason, v.reasonDetail, v.policy], ['signed_out', POLICY_SENTENCE, 'AADSTS53003: blocked by Conditional Access.', true]);
});
