// The graph2mqtt TV display: subscribes to one account's topics over MQTT WebSockets and renders
// the sign-in code, the state and the Graph data. Everything it shows comes from retained topics,
// so a display that starts (or reconnects) late shows the current state at once.
//
// Every payload is put on the page with textContent, never as HTML.

import mqtt from 'mqtt';
import QRCode from 'qrcode';
import {
  readSettings,
  topicsFor,
  parsePayload,
  codeDeadline,
  isShowableCode,
  urlPieces,
  view,
} from './model.js';

const $ = (id) => document.getElementById(id);

const settings = readSettings(window.location);
const topics = topicsFor(settings);

// What has arrived over MQTT. Rendering is a function of this and the clock.
const state = {
  connection: 'connecting', // connecting | connected | reconnecting
  connectionError: '',
  bridge: null, // online | offline | null (not known yet)
  authState: null,
  authCode: null,
  codeDeadline: null,
  codeTotalMs: null, // the progress bar's 100 %
  codeTotalFor: null, // ... for this user code (or sign-in address)
  graph: {},
  accounts: null, // from bridge/info, when no account is given
};

// The "Sign in" button's request in flight.
const login = { transaction: null, timer: null, error: '' };

// The pasted address's `complete` request in flight, and the last answer to show.
//   status: '' | 'sending' | 'error' | 'ok'
const complete = { transaction: null, timer: null, status: '', message: '' };

let client = null;

function start() {
  $('account-name').textContent = settings.account ? `· ${settings.account}` : '';
  if (settings.errors.length) {
    showSetup(settings.errors.join(' '));
    return;
  }
  connect();
  $('sign-in').addEventListener('click', () => requestLogin());
  $('sign-in-browser').addEventListener('click', () => requestLogin('browser'));
  $('complete-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sendComplete();
  });
  // Open the paste field where there is something to paste with (a keyboard, a mouse, a
  // touchscreen browser); a TV's remote finds it collapsed, one click away.
  $('complete').open = hasKeyboardLikeInput();
  window.addEventListener('resize', () => render());
  render();
  setInterval(render, 1000); // countdown, clock, meetings that start or end
}

function connect() {
  client = mqtt.connect(settings.broker, {
    protocolVersion: settings.version,
    clientId: `g2m-display-${Math.random().toString(16).slice(2, 10)}`,
    username: settings.username,
    password: settings.password,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 2000,
    connectTimeout: 10000,
    resubscribe: false, // the 'connect' handler subscribes, after every (re)connection
  });

  client.on('connect', () => {
    state.connection = 'connected';
    state.connectionError = '';
    // Forget what arrived before: a topic cleared while we were away is not re-sent (an empty
    // retained message is a deletion), so only what the broker holds now is true. The retained
    // messages come back within milliseconds; the next render shows them.
    Object.assign(state, { bridge: null, authState: null, authCode: null, codeDeadline: null, graph: {} });
    const wanted = [topics.bridgeState];
    if (settings.account) {
      wanted.push(topics.authState, topics.authCode, `${topics.graphPrefix}+`);
      // Replies to our own "Sign in" requests. A read-only display user may not read them:
      // the broker then refuses this one subscription, and the rest still works.
      if (settings.controls) wanted.push(topics.loginResponse, topics.completeResponse);
    } else {
      wanted.push(topics.bridgeInfo);
    }
    client.subscribe(wanted, { qos: 1 }, (err) => {
      if (err) console.warn('subscribe failed', err);
    });
  });
  client.on('reconnect', () => {
    state.connection = 'reconnecting';
    render();
  });
  client.on('close', () => {
    if (state.connection === 'connected') state.connection = 'reconnecting';
    if (login.transaction) clearLogin(); // its reply, if any, is lost with the connection
    if (complete.transaction) failComplete('The connection to the broker dropped before graph2mqtt answered. Paste the address again.');
    render();
  });
  client.on('error', (err) => {
    // Browsers hide most WebSocket errors; CONNACK refusals (bad password) do come here.
    state.connectionError = err && err.message ? err.message : String(err);
    render();
  });
  client.on('message', onMessage);
}

function onMessage(topic, payload, packet) {
  const now = Date.now();
  const body = parsePayload(payload);
  if (topic === topics.bridgeState) {
    state.bridge = body && typeof body.state === 'string' ? body.state : null;
  } else if (topic === topics.bridgeInfo) {
    state.accounts = body && Array.isArray(body.accounts) ? body.accounts : null;
  } else if (topic === topics.authState) {
    state.authState = body;
    if (body && body.state !== 'signed_out') login.error = ''; // an old refusal is moot
  } else if (topic === topics.authCode) {
    onCode(body, packet, now);
  } else if (topic.startsWith(topics.graphPrefix)) {
    const name = topic.slice(topics.graphPrefix.length);
    if (body) state.graph[name] = body;
    else delete state.graph[name]; // cleared: the tokens are gone
  } else if (topic === topics.loginResponse) {
    onLoginResponse(body);
  } else if (topic === topics.completeResponse) {
    onCompleteResponse(body);
  }
  render();
}

function onCode(body, packet, now) {
  state.authCode = isShowableCode(body) ? body : null;
  if (!state.authCode) {
    state.codeDeadline = null;
    return;
  }
  const expiry = packet?.properties?.messageExpiryInterval;
  state.codeDeadline = codeDeadline(state.authCode, expiry, now);
  // Which clock the countdown follows, for the curious (and the end-to-end test).
  $('code-countdown').dataset.source = Number.isFinite(expiry) ? 'message-expiry' : 'expires_at';
  // The progress bar runs from when this screen first saw this code (a reconnection or a
  // re-published interval does not refill it).
  const key = state.authCode.user_code || state.authCode.sign_in_url;
  if (state.codeTotalFor !== key) {
    state.codeTotalFor = key;
    // A new sign-in: an answer about the previous one's address is moot.
    if (!complete.transaction) Object.assign(complete, { status: '', message: '' });
    state.codeTotalMs = state.codeDeadline === null ? null : Math.max(1, state.codeDeadline - now);
  }
  clearLogin();
}

// ---- the "Sign in" button ----------------------------------------------------------------

function newTransaction() {
  return `display-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

// method: undefined (the account's sign_in_method) or 'browser' (after a tenant's policy
// refused the device code).
function requestLogin(method) {
  if (!client || state.connection !== 'connected' || login.transaction) return;
  login.transaction = newTransaction();
  login.error = '';
  const fields = { account: settings.account, transaction: login.transaction };
  if (method) fields.method = method;
  const request = JSON.stringify(fields);
  client.publish(topics.loginRequest, request, { qos: 1 }, (err) => {
    if (err) {
      // MQTT 5: the broker's ACL refused the publish (reason code 135, not authorized).
      const refused = err.code === 135 || /authori[sz]ed/i.test(err.message || '');
      failLogin(
        refused
          ? 'This display may not start a sign-in. Ask whoever runs the gateway.'
          : `The request could not be sent: ${err.message || err}`,
      );
    }
  });
  // Without a reply (a read-only display user cannot read replies), the state change says it.
  login.timer = setTimeout(() => failLogin(''), 35000);
  render();
}

function onLoginResponse(body) {
  if (!body || body.transaction !== login.transaction) return;
  if (body.status === 'error') failLogin(body.error || 'The sign-in could not start.');
  // On success the code arrives on auth/code, which ends the wait.
}

function failLogin(message) {
  clearLogin();
  login.error = message;
  render();
}

function clearLogin() {
  clearTimeout(login.timer);
  login.timer = null;
  login.transaction = null;
}

// ---- the pasted address (a browser sign-in's last step) ----------------------------------

function hasKeyboardLikeInput() {
  const m = (q) => window.matchMedia && window.matchMedia(q).matches;
  return m('(any-pointer: fine)') || m('(any-hover: hover)') || m('(any-pointer: coarse)');
}

function sendComplete() {
  const input = $('complete-url');
  const url = input.value.trim();
  if (!url || complete.transaction) return;
  if (!client || state.connection !== 'connected') {
    showComplete('error', 'There is no connection to the broker: try again in a moment.');
    return;
  }
  if (!/[?&]?(code|error)=/.test(url)) {
    // Not sent: the agent would refuse it, and the address may hold something private.
    showComplete('error', 'That is not the address the sign-in ends at: it has no "code=" in it. ' +
      'Copy the whole address from the browser\'s address bar after you signed in.');
    return;
  }
  complete.transaction = newTransaction();
  showComplete('sending', 'Finishing the sign-in…');
  // The address holds the authorization code: it goes to the broker and nowhere else (no log).
  const request = JSON.stringify({ account: settings.account, url, transaction: complete.transaction });
  client.publish(topics.completeRequest, request, { qos: 1 }, (err) => {
    if (err) {
      const refused = err.code === 135 || /authori[sz]ed/i.test(err.message || '');
      failComplete(
        refused
          ? 'This display may not finish a sign-in (the broker refused). Ask whoever runs the gateway.'
          : `The address could not be sent: ${err.message || err}`,
      );
    }
  });
  // The agent answers when the token endpoint has; a display user that may not read the
  // replies sees the result on auth/state instead.
  complete.timer = setTimeout(() => {
    if (complete.transaction) failComplete('graph2mqtt did not answer. If the screen does not change, paste the address again.');
  }, 45000);
}

function onCompleteResponse(body) {
  if (!body || body.transaction !== complete.transaction) return;
  clearTimeout(complete.timer);
  complete.transaction = null;
  if (body.status === 'ok') {
    $('complete-url').value = '';
    showComplete('ok', 'Signed in.');
  } else {
    // The agent's own sentence (wrong or old address, declined, a network failure, …).
    showComplete('error', body.error || 'graph2mqtt refused the address.');
  }
}

function failComplete(message) {
  clearTimeout(complete.timer);
  complete.timer = null;
  complete.transaction = null;
  showComplete('error', message);
}

function showComplete(status, message) {
  complete.status = status;
  complete.message = message;
  render();
}

// ---- rendering -----------------------------------------------------------------------------

function show(id, visible) {
  $(id).hidden = !visible;
}

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

function render() {
  const now = Date.now();
  setText('clock', new Date(now).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  if (!settings.account) {
    renderAccountChooser();
    return;
  }
  const v = view(state, now);
  renderStatus(v);

  let screen = v.screen;
  if (screen === 'signed_out' && login.transaction) screen = 'requesting';
  $('screen').dataset.screen = screen;

  if (screen === 'connecting' || screen === 'waiting') {
    setText(
      'connecting-title',
      screen === 'waiting' ? 'Waiting for graph2mqtt…' : v.connectionError ? 'Cannot connect to the broker' : 'Connecting…',
    );
    setText(
      'connecting-detail',
      screen === 'connecting'
        ? `to ${settings.broker}${v.connectionError ? ` (${v.connectionError})` : ''}`
        : `No sign-in state for "${settings.account}" yet on ${topics.authState}.`,
    );
  } else if (screen === 'code') {
    renderCode(v.code, v.currentUser);
  } else if (screen === 'signed_in') {
    renderSignedIn(v);
  } else if (screen === 'signed_out') {
    setText('signed-out-reason', v.reason);
    setText('signed-out-detail', v.reasonDetail || '');
    show('signed-out-detail', !!v.reasonDetail);
    $('signed-out').dataset.policy = v.policy ? 'true' : 'false';
    show('sign-in', settings.controls);
    $('sign-in').disabled = state.connection !== 'connected';
    // A tenant that refuses the device code: offer the browser sign-in (login with method).
    show('sign-in-browser', settings.controls && v.policy);
    // ... and make it the first choice: the plain button would meet the same refusal.
    $('sign-in').classList.toggle('secondary', !!v.policy);
    $('sign-in-browser').classList.toggle('secondary', !v.policy);
    $('sign-in-browser').disabled = state.connection !== 'connected';
    setText('sign-in-error', login.error);
    show('sign-in-error', !!login.error);
  }
}

function renderStatus(v) {
  const pill = $('agent-status');
  let status = 'unknown';
  let text = 'Agent …';
  if (state.connection !== 'connected') {
    status = 'offline';
    text = 'No connection';
  } else if (state.bridge === 'online') {
    status = 'online';
    text = 'Agent online';
  } else if (state.bridge === 'offline') {
    status = 'offline';
    text = 'Agent offline';
  }
  pill.dataset.status = status;
  setText('agent-status', text);

  let banner = '';
  if (state.connection !== 'connected' && v.screen !== 'connecting') {
    banner = `No connection to the broker — retrying…${v.connectionError ? ` (${v.connectionError})` : ''}`;
  } else if (v.agentOffline) {
    banner = 'Agent offline — what is shown may be out of date';
  }
  setText('banner', banner);
  show('banner', !!banner);
  document.body.classList.toggle('stale', !!banner);
}

let qrShown = '';

function renderCode(code, currentUser) {
  const browser = code.method === 'browser';
  $('code').dataset.method = code.method;
  show('device-steps', !browser);
  show('browser-steps', browser);
  setText('qr-caption', browser ? 'Scan with your phone to sign in' : 'or scan with your phone');
  if (browser) {
    renderBrowserSteps(code);
  } else {
    setUrl($('code-url'), code.urlText || code.url);
    const el = $('user-code');
    const grouped = code.groups.join(' ');
    if (el.dataset.code !== code.userCode) {
      el.dataset.code = code.userCode;
      el.replaceChildren(
        ...code.groups.map((g) => {
          const span = document.createElement('span');
          span.className = 'group';
          span.textContent = g;
          return span;
        }),
      );
      el.setAttribute('aria-label', grouped);
    }
    el.classList.toggle('expired', code.expired);
    fitWidth(el);
  }
  setText('code-countdown', code.expired ? (browser ? 'This sign-in has expired' : 'This code has expired') : code.countdown ? `expires in ${code.countdown}` : '');
  const meter = $('code-meter');
  meter.style.width = code.fraction === null ? '0%' : `${(code.fraction * 100).toFixed(2)}%`;
  meter.dataset.low = code.fraction !== null && code.fraction < 0.2 ? 'true' : 'false';
  setText('code-current-user', currentUser ? `${currentUser} stays signed in until the new sign-in is done.` : '');
  show('code-current-user', !!currentUser);

  if (qrShown !== code.qr) {
    qrShown = code.qr;
    drawQr($('qr'), code.qr);
  }
  $('qr').classList.toggle('expired', code.expired);
}

function renderBrowserSteps(code) {
  const link = $('sign-in-link');
  if (link.dataset.url !== code.url) {
    link.dataset.url = code.url;
    if (code.link) link.href = code.link;
    else link.removeAttribute('href');
    link.textContent = code.urlText;
  }
  show('complete', settings.controls);
  show('complete-readonly', !settings.controls);
  const sending = !!complete.transaction;
  $('complete-send').disabled = sending || code.expired || state.connection !== 'connected';
  $('complete-url').disabled = code.expired;
  const status = $('complete-status');
  status.dataset.status = complete.status;
  setText('complete-status', complete.message);
  show('complete-status', !!complete.message);
  if (complete.status === 'error' && !$('complete').open) $('complete').open = true;
}

// A URL as text with a line-break opportunity after each / . ? & = (no innerHTML).
function setUrl(el, text) {
  if (el.dataset.text === text) return;
  el.dataset.text = text;
  const nodes = [];
  for (const piece of urlPieces(text)) {
    nodes.push(document.createTextNode(piece), document.createElement('wbr'));
  }
  el.replaceChildren(...nodes);
}

// Shrinks a no-wrap element's font until it fits its container's width (a long code in
// portrait, a small screen); back to the stylesheet's size first, so it grows again too.
function fitWidth(el) {
  const box = el.parentElement;
  const key = `${el.dataset.code}|${box.clientWidth}|${window.innerHeight}`;
  if (el.dataset.fit === key) return;
  el.dataset.fit = key;
  el.style.fontSize = '';
  const avail = box.clientWidth - (parseFloat(getComputedStyle(box).paddingLeft) || 0);
  const width = el.getBoundingClientRect().width;
  if (avail > 0 && width > avail) {
    const size = parseFloat(getComputedStyle(el).fontSize);
    el.style.fontSize = `${Math.floor(size * (avail / width) * 0.97)}px`;
  }
}

// The QR code as an SVG built from the module matrix (crisp at any size, no innerHTML).
function drawQr(container, text) {
  container.dataset.text = text;
  container.replaceChildren();
  if (!text) return;
  // A long browser sign-in address: level L keeps the modules large enough to scan off a
  // screen (no print, no dirt to correct for).
  const qr = QRCode.create(text, { errorCorrectionLevel: text.length > 200 ? 'L' : 'M' });
  const size = qr.modules.size;
  const margin = 4; // the quiet zone a scanner needs
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const total = size + 2 * margin;
  svg.setAttribute('viewBox', `0 0 ${total} ${total}`);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(ns, 'rect');
  bg.setAttribute('width', String(total));
  bg.setAttribute('height', String(total));
  bg.setAttribute('fill', '#fff');
  svg.appendChild(bg);
  let d = '';
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (qr.modules.get(y, x)) d += `M${x + margin} ${y + margin}h1v1h-1z`;
    }
  }
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.appendChild(path);
  container.appendChild(svg);
}

function renderSignedIn(v) {
  // Without a name (a provider that sends none), just "Signed in".
  setText('signed-in-label', v.name ? 'Signed in as' : '');
  setText('signed-in-text', v.name ? v.name : 'Signed in');
  $('signed-in-text').dataset.name = v.name;
  setText('signed-in-username', v.username);

  const p = v.presence;
  show('presence', !!p);
  if (p) {
    $('presence').dataset.colour = p.colour;
    $('presence').dataset.availability = p.availability;
    setText('presence-label', p.label);
    setText('presence-activity', p.activity);
  }

  const meetings = v.meetings;
  show('meetings', !!meetings);
  if (meetings) {
    const list = $('meeting-list');
    const key = JSON.stringify(meetings.map((m) => [m.subject, m.start, m.end, m.location, m.now, m.day]));
    if (list.dataset.key !== key) {
      list.dataset.key = key;
      list.replaceChildren(...meetings.map(meetingItem));
    }
    show('no-meetings', meetings.length === 0);
    fitList($('meetings'), list);
  }
}

// Shows only the meetings that fit in their panel, whole (a TV does not scroll).
function fitList(panel, list) {
  const items = [...list.children];
  items.forEach((li) => (li.hidden = false));
  const bottom = panel.getBoundingClientRect().bottom - parseFloat(getComputedStyle(panel).paddingBottom);
  items.forEach((li, i) => {
    if (i > 0 && li.getBoundingClientRect().bottom > bottom + 1) li.hidden = true;
  });
}

function meetingItem(m) {
  const li = document.createElement('li');
  li.className = m.now ? 'meeting now' : 'meeting';
  const time = document.createElement('span');
  time.className = 'time';
  const hhmm = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  time.textContent = m.allDay ? 'All day' : m.now ? 'Now' : hhmm(m.start);
  const what = document.createElement('span');
  what.className = 'what';
  const subject = document.createElement('span');
  subject.className = 'subject';
  subject.textContent = m.subject;
  const detail = document.createElement('span');
  detail.className = 'detail';
  detail.textContent = [m.day, m.allDay ? '' : `${hhmm(m.start)}–${hhmm(m.end)}`, m.location]
    .filter(Boolean)
    .join(' · ');
  what.append(subject, detail);
  li.append(time, what);
  return li;
}

// ---- no account given ----------------------------------------------------------------------

function showSetup(text) {
  $('screen').dataset.screen = 'setup';
  setText('setup-text', text);
}

function renderAccountChooser() {
  renderStatus({ screen: 'setup', agentOffline: state.bridge === 'offline' });
  const accounts = state.accounts;
  if (accounts && accounts.length === 1) {
    const url = new URL(window.location.href);
    url.searchParams.set('account', accounts[0]);
    window.location.replace(url.toString());
    return;
  }
  showSetup(
    accounts && accounts.length
      ? 'Choose the account this screen is for:'
      : 'This page shows one graph2mqtt account: name it in the address.',
  );
  const list = $('setup-accounts');
  const key = JSON.stringify(accounts || []);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(
    ...(accounts || []).map((name) => {
      const url = new URL(window.location.href);
      url.searchParams.set('account', name);
      const a = document.createElement('a');
      a.href = url.toString();
      a.textContent = name;
      const li = document.createElement('li');
      li.appendChild(a);
      return li;
    }),
  );
}

start();
