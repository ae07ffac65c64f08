// What the display shows, as pure functions of what arrived over MQTT and the time.
// No DOM and no MQTT here, so that `node --test` can check it (test/model.test.mjs).

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

// Reads the page's query string: ?account=kitchen&base=graph2mqtt&broker=ws://host:9001
// &username=display&password=...&controls=0&mqtt=4. `location` is window.location (or a URL).
export function readSettings(location) {
  const q = new URLSearchParams(location.search);
  const errors = [];
  const account = q.get('account') || '';
  if (account && !NAME.test(account)) {
    errors.push(`The account name "${account}" is not valid: use letters, digits, _ and - (at most 64).`);
  }
  if (account === 'bridge') errors.push('"bridge" is not an account name.');
  const base = q.get('base') || 'graph2mqtt';
  if (/[#+]/.test(base) || base.startsWith('/') || base.endsWith('/') || base.includes('//')) {
    errors.push(`The base topic "${base}" is not valid: no wildcards, no leading, trailing or double /.`);
  }
  let broker = q.get('broker') || defaultBroker(location);
  if (!/^wss?:\/\//i.test(broker)) {
    errors.push(`The broker "${broker}" must be a ws:// or wss:// URL (MQTT over WebSockets).`);
  }
  const version = q.get('mqtt') === '4' ? 4 : 5;
  return {
    account,
    base,
    broker,
    username: q.get('username') || undefined,
    password: q.get('password') || undefined,
    controls: !['0', 'false', 'no', 'off'].includes((q.get('controls') || '').toLowerCase()),
    version,
    errors,
  };
}

// The page may be served by Mosquitto itself (http_dir on the WebSockets listener) or by any
// web server on the gateway: either way the broker is on the same host, port 9001 by default.
function defaultBroker(location) {
  const secure = location.protocol === 'https:';
  const host = location.hostname || '127.0.0.1';
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${secure ? 'wss' : 'ws'}://${bracketed}:9001`;
}

export function topicsFor(settings) {
  const { base, account } = settings;
  return {
    bridgeState: `${base}/bridge/state`,
    bridgeInfo: `${base}/bridge/info`,
    loginRequest: `${base}/bridge/request/login`,
    loginResponse: `${base}/bridge/response/login`,
    completeRequest: `${base}/bridge/request/complete`,
    completeResponse: `${base}/bridge/response/complete`,
    authCode: `${base}/${account}/auth/code`,
    authState: `${base}/${account}/auth/state`,
    graphPrefix: `${base}/${account}/graph/`,
  };
}

// A payload as JSON, or null when it is empty (the topic was cleared) or not a JSON object.
export function parsePayload(payload) {
  const text = typeof payload === 'string' ? payload : new TextDecoder().decode(payload);
  if (text.trim() === '') return null;
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

// When a code stops working, in ms since the epoch. Over MQTT 5 the agent sets a message-expiry
// interval on auth/code equal to the seconds the code has left, and the broker counts it down
// while the message is retained: that does not depend on this screen's clock being right.
// Otherwise expires_at (the gateway's clock) is used.
export function codeDeadline(code, messageExpirySeconds, receivedAtMs) {
  if (Number.isFinite(messageExpirySeconds) && messageExpirySeconds >= 0) {
    return receivedAtMs + messageExpirySeconds * 1000;
  }
  const at = Date.parse(code?.expires_at ?? '');
  return Number.isFinite(at) ? at : null;
}

// "14:05" for 845 s, "1:02:03" above an hour, "0:00" when over.
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

// A browser sign-in (§6 of the contract) has a sign_in_url and no user code.
export function isBrowserSignIn(code) {
  return !!code && code.method === 'browser' && typeof code.sign_in_url === 'string' && code.sign_in_url !== '';
}

// A code worth showing: a device code with its user code, or a browser sign-in with its URL.
export function isShowableCode(code) {
  return !!code && (isBrowserSignIn(code) || (typeof code.user_code === 'string' && code.user_code !== ''));
}

// The URL to put in the QR code: the browser sign-in's address (nobody types it), else the one
// that pre-fills the device code when there is one, else the one to type.
export function qrTarget(code) {
  if (isBrowserSignIn(code)) return code.sign_in_url;
  return code?.verification_uri_complete || code?.verification_uri || '';
}

// Only web addresses become links (a payload is never trusted to be harmless).
export function safeLink(url) {
  return /^https?:\/\/[^\s]+$/i.test(String(url || '')) ? String(url) : '';
}

// "login.microsoftonline.com/…" for a long sign-in URL: enough to recognise it; the link and
// the QR code carry the whole address.
export function shortUrl(url) {
  const m = String(url || '').match(/^https?:\/\/([^/?#]+)(.*)$/i);
  if (!m) return displayUrl(url);
  return m[2] && m[2] !== '/' ? `${m[1]}/…` : m[1];
}

// The pieces of a URL to show with a line-break opportunity after each / . ? & = (so a long
// address wraps at a sensible point, never mid-word unless a piece alone is wider than the line).
export function urlPieces(text) {
  return String(text || '').match(/[^/.?&=]*[/.?&=]+|[^/.?&=]+$/g) || [];
}

// The URL as a person would type it: no scheme, no trailing slash.
export function displayUrl(url) {
  return String(url || '').replace(/^https?:\/\//i, '').replace(/\/$/, '');
}

// The user code grouped for reading aloud and typing: "E4A AFX 9VN" for 9 characters,
// "ABCD-EFGH" style codes (other providers) are kept as sent.
export function groupCode(userCode) {
  const code = String(userCode || '');
  if (!/^[A-Za-z0-9]{7,12}$/.test(code)) return [code];
  const size = code.length % 3 === 0 ? 3 : 4;
  const groups = [];
  for (let i = 0; i < code.length; i += size) groups.push(code.slice(i, i + size));
  return groups;
}

const AVAILABILITY = {
  Available: { label: 'Available', colour: 'green' },
  AvailableIdle: { label: 'Available', colour: 'green' },
  Busy: { label: 'Busy', colour: 'red' },
  BusyIdle: { label: 'Busy', colour: 'red' },
  DoNotDisturb: { label: 'Do not disturb', colour: 'red' },
  Away: { label: 'Away', colour: 'yellow' },
  BeRightBack: { label: 'Be right back', colour: 'yellow' },
  Offline: { label: 'Offline', colour: 'grey' },
  PresenceUnknown: { label: 'Unknown', colour: 'grey' },
};

// "InAConferenceCall" -> "In a conference call".
export function humanize(word) {
  const spaced = String(word || '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .toLowerCase();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

export function presenceView(body) {
  if (!body || typeof body.availability !== 'string') return null;
  const known = AVAILABILITY[body.availability];
  const label = known ? known.label : humanize(body.availability);
  const activity = typeof body.activity === 'string' ? humanize(body.activity) : '';
  return {
    availability: body.availability,
    label,
    colour: known ? known.colour : 'grey',
    // Only when it says more than the availability does ("In a meeting" under "Busy").
    activity: activity && activity.toLowerCase() !== label.toLowerCase() ? activity : '',
  };
}

function isCalendar(body) {
  return (
    !!body &&
    Array.isArray(body.value) &&
    body.value.length >= 0 &&
    body.value.every((e) => e && typeof e === 'object' && e.start && typeof e.start.dateTime === 'string')
  );
}

// Graph's dateTimeTimeZone: {"dateTime":"2026-11-26T09:00:00.0000000","timeZone":"UTC"}. Without
// a Prefer: outlook.timezone header Graph answers in UTC; another zone is shown as written.
export function parseGraphTime(dt) {
  if (!dt || typeof dt.dateTime !== 'string') return null;
  const text = dt.dateTime.replace(/(\.\d{3})\d+/, '$1');
  const zone = (dt.timeZone || 'UTC').toUpperCase();
  const hasOffset = /(Z|[+-]\d\d:?\d\d)$/.test(text);
  const ms = Date.parse(hasOffset || (zone !== 'UTC' && zone !== 'GMT') ? text : `${text}Z`);
  return Number.isFinite(ms) ? ms : null;
}

// The next meetings (those not over yet), soonest first, at most `limit`.
export function meetingsView(body, nowMs, limit = 4) {
  if (!isCalendar(body)) return null;
  const events = [];
  for (const e of body.value) {
    if (e.isCancelled) continue;
    const start = parseGraphTime(e.start);
    const end = parseGraphTime(e.end) ?? start;
    if (start === null || end <= nowMs) continue;
    events.push({
      subject: typeof e.subject === 'string' && e.subject.trim() ? e.subject : '(no subject)',
      location: typeof e.location?.displayName === 'string' ? e.location.displayName : '',
      start,
      end,
      allDay: !!e.isAllDay,
      now: start <= nowMs,
      day: start <= nowMs ? '' : dayLabel(start, nowMs),
    });
  }
  events.sort((a, b) => a.start - b.start);
  return events.slice(0, limit);
}

// "" for today, "Tomorrow", else a short weekday ("Mon"), in the screen's time zone.
export function dayLabel(ms, nowMs) {
  const day = (t) => {
    const d = new Date(t);
    return Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86400000;
  };
  const diff = day(ms) - day(nowMs);
  if (diff <= 0) return '';
  if (diff === 1) return 'Tomorrow';
  return new Date(ms).toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' });
}

// Which graph/R body is the presence, which is the calendar: by shape, preferring the
// resource names used in the docs (presence, today) when several fit.
export function pickResources(graph) {
  const names = Object.keys(graph).sort();
  const find = (preferred, test) => {
    if (graph[preferred] && test(graph[preferred])) return preferred;
    return names.find((n) => test(graph[n])) ?? null;
  };
  const presence = find('presence', (b) => !!presenceView(b));
  const calendar = find('today', isCalendar);
  const me = find('me', (b) => !!b && typeof b.displayName === 'string');
  return { presence, calendar, me };
}

const REASONS = {
  logout: 'Signed out.',
  cancelled: 'The sign-in was cancelled.',
  declined: 'The sign-in was declined.',
  code_expired: 'The sign-in expired before anyone finished it.',
  refresh_rejected: 'Microsoft ended the session. Please sign in again.',
  blocked: 'Your organisation blocks this way of signing in. Ask your administrator.',
  error: 'The sign-in failed. Please try again.',
  shutdown: 'The sign-in stopped when the agent shut down.',
};

export function reasonText(reason) {
  if (!reason) return 'Nobody is signed in on this screen yet.';
  return REASONS[reason] ?? `Signed out (${reason}).`;
}

export const POLICY_SENTENCE =
  'Your organisation blocks sign-in with a code — ask your administrator, or use the browser sign-in.';

// Why a sign-in ended, from auth/state's reason and error ({error, description, policy}):
//   { text, detail, policy } — `text` the sentence in large type, `detail` the small print
//   (the platform's own description, when the sentence is not already it), `policy` true when
//   the tenant's policy refused the device code (the page then offers the browser sign-in).
export function signedOutView(st) {
  const reason = st?.reason ?? null;
  const err = st?.error && typeof st.error === 'object' ? st.error : null;
  const description = typeof err?.description === 'string' ? err.description.trim() : '';
  const code = typeof err?.error === 'string' ? err.error : '';
  if (err && (err.policy === 'security_defaults' || err.policy === 'conditional_access')) {
    return { text: POLICY_SENTENCE, detail: description, policy: true };
  }
  if (err && /AADSTS(90002|900023)\b/.test(description)) {
    const tenant = description.match(/'([^']{1,200})'/);
    return {
      text: tenant ? `Unknown tenant '${tenant[1]}'.` : 'Unknown tenant.',
      detail: `${description} Check the tenant in graph2mqtt's configuration.`,
      policy: false,
    };
  }
  if (err && (description || code)) {
    return { text: description || `The sign-in failed (${code}).`, detail: '', policy: false };
  }
  return { text: reasonText(reason), detail: '', policy: reason === 'blocked' };
}

// Everything the page renders, from the MQTT-side state and the time.
//   s = { connection, connectionError, bridge, authState, authCode, codeDeadline,
//         codeTotalMs, graph }
export function view(s, nowMs) {
  const out = {
    connection: s.connection,
    connectionError: s.connectionError || '',
    agentOffline: s.bridge === 'offline',
    screen: 'waiting',
  };
  if (s.connection !== 'connected' && !s.authState) {
    out.screen = 'connecting';
    return out;
  }
  const st = s.authState;
  const code = s.authCode ?? (st?.state === 'pending' ? st.code : null) ?? null;
  const user = st?.user ?? null;
  const { presence, calendar, me } = pickResources(s.graph || {});
  const name = user?.name || user?.username || (me ? s.graph[me].displayName : '') || '';

  if (isShowableCode(code)) {
    const deadline = s.codeDeadline ?? codeDeadline(code, undefined, nowMs);
    const left = deadline === null ? null : deadline - nowMs;
    const browser = isBrowserSignIn(code);
    out.screen = 'code';
    out.code = {
      method: browser ? 'browser' : 'device_code',
      userCode: browser ? '' : code.user_code,
      groups: browser ? [] : groupCode(code.user_code),
      url: browser ? code.sign_in_url : code.verification_uri || '',
      urlText: browser ? shortUrl(code.sign_in_url) : displayUrl(code.verification_uri),
      link: browser ? safeLink(code.sign_in_url) : '',
      qr: qrTarget(code),
      expired: left !== null && left <= 0,
      countdown: left === null ? '' : formatCountdown(left),
      fraction:
        left === null || !s.codeTotalMs ? null : Math.max(0, Math.min(1, left / s.codeTotalMs)),
    };
    // A forced re-sign-in: the old tokens stay in use until the new sign-in succeeds.
    out.currentUser = st?.state === 'pending' && user ? name : '';
    return out;
  }
  if (!st) return out; // waiting for the agent's retained auth/state
  if (st.state === 'signed_in') {
    out.screen = 'signed_in';
    out.name = name;
    out.username = user?.username && user.username !== name ? user.username : '';
    out.presence = presence ? presenceView(s.graph[presence]) : null;
    out.meetings = calendar ? meetingsView(s.graph[calendar], nowMs) : null;
    return out;
  }
  if (st.state === 'pending') {
    out.screen = 'requesting'; // renew_code: pending, the new code not out yet
    return out;
  }
  out.screen = 'signed_out';
  const why = signedOutView(st);
  out.reason = why.text;
  out.reasonDetail = why.detail;
  out.policy = why.policy;
  return out;
}
