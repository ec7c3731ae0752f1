// The keybind demo's sign-in page and phone panel. The page talks only to
// its own backend (/api/…), which calls the keybind server.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  // api calls the backend and returns {ok, status, data}; a problem's data
  // has code and detail.
  async function api(method, path, body) {
    const opts = {method: method, headers: {}};
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      return {ok: false, status: 0, data: {code: 'demo.offline', detail: 'the demo server cannot be reached (is it still running?)'}};
    }
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {code: 'http.' + resp.status, detail: resp.statusText}; }
    return {ok: resp.ok, status: resp.status, data: data};
  }

  function show(el, on) { el.hidden = !on; }

  function text(tag, cls, s) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (s !== undefined) e.textContent = s;
    return e;
  }

  function seconds(ms) { return Math.max(0, Math.ceil(ms / 1000)); }

  // ---- Sign-in page ----

  const passwordReasons = {
    'signin.no_credential': 'No phone is set up for this account.',
    'user.not_found': 'Phone sign-in is not available for this account.',
    'signin.not_targeted': 'Phone sign-in is not turned on for this account.',
    'signin.disabled': 'Phone sign-in is turned off.',
    'signin.backoff': 'Too many phone sign-ins went unanswered in a row.'
  };

  const outcomes = {
    'approved': () => 'Signed in with the phone.',
    'denied': (r) => r === 'signin.wrong_number' ? 'Denied: the wrong number was tapped on the phone.' : 'Denied on the phone.',
    'fraud': () => 'Reported as fraud on the phone: the sign-in was blocked.',
    'expired': () => 'Expired: nobody answered on the phone in time.',
    'cancelled': (r) => r === 'signin.replaced' ? 'Replaced by a newer sign-in for this account.' : 'Cancelled.'
  };

  function initLogin() {
    const form = $('signin-form');
    let flow = null; // the sign-in being shown
    let timer = null;

    const hint = new URLSearchParams(location.search).get('login_hint');
    if (hint) $('username').value = hint;

    function reset() {
      flow = null;
      clearInterval(timer);
      show(form, true);
      show($('number-panel'), false);
      show($('password-panel'), false);
      show($('result'), false);
      show($('error'), false);
      $('next').disabled = false;
      $('username').focus();
    }

    function error(msg) {
      $('error').textContent = msg;
      show($('error'), true);
    }

    function result(state, msg) {
      clearInterval(timer);
      show(form, false);
      show($('number-panel'), false);
      show($('password-panel'), false);
      $('status').textContent = msg;
      $('status').dataset.state = state;
      show($('result'), true);
    }

    function askPassword(f, msg) {
      clearInterval(timer);
      show(form, false);
      show($('number-panel'), false);
      $('password-reason').textContent = msg;
      $('password-user').textContent = f.username;
      $('password').value = '';
      show($('password-panel'), true);
      $('password-panel').dataset.flow = f.flow;
      $('password').focus();
    }

    async function waitOutcome(f) {
      while (flow === f) {
        const r = await api('GET', '/api/signin/' + encodeURIComponent(f.flow) + '/outcome');
        if (flow !== f) return;
        if (!r.ok) {
          if (r.status === 0 || r.status >= 500) { await new Promise((res) => setTimeout(res, 2000)); continue; }
          result('error', r.data.detail || r.data.code);
          return;
        }
        if (r.data.state === 'pending') continue;
        const say = outcomes[r.data.state] || (() => r.data.state);
        const who = r.data.state === 'approved' ? ' Welcome, ' + f.username + '.' : '';
        result(r.data.state, say(r.data.reason) + who);
        return;
      }
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      show($('error'), false);
      $('next').disabled = true;
      const r = await api('POST', '/api/signin', {username: $('username').value});
      $('next').disabled = false;
      if (!r.ok) { error(r.data.detail || r.data.code); return; }
      const f = r.data;
      flow = f;
      if (f.method === 'federate') {
        $('next').disabled = true;
        location.assign(f.federation_url);
        return;
      }
      if (f.method === 'password') {
        let msg = (passwordReasons[f.reason] || 'Phone sign-in is not available.') + ' Use your password instead.';
        if (f.detail) msg += ' (' + f.detail + ')';
        askPassword(f, msg);
        $('password-reason').dataset.reason = f.reason || '';
        return;
      }
      // Phone: show the number until the outcome comes.
      show(form, false);
      $('number').textContent = String(f.number);
      $('number-user').textContent = f.username;
      const deadline = Date.now() + f.expires_in_ms;
      const tick = () => { $('countdown').textContent = '(' + seconds(deadline - Date.now()) + ' s left)'; };
      tick();
      timer = setInterval(tick, 500);
      show($('number-panel'), true);
      waitOutcome(f);
    });

    $('use-password').addEventListener('click', async () => {
      const f = flow;
      if (!f) return;
      flow = null; // stop waiting for the phone
      const r = await api('POST', '/api/signin/' + encodeURIComponent(f.flow) + '/password');
      if (!r.ok) { error(r.data.detail || r.data.code); return; }
      // A copy: the wait for the phone's outcome, which sees its flow
      // replaced, stops without showing the cancellation.
      flow = Object.assign({}, f);
      askPassword(flow, 'The sign-in on the phone was cancelled.');
      $('password-reason').dataset.reason = 'cancelled';
    });

    $('password-panel').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      show($('error'), false);
      const f = flow;
      if (!f) return;
      const r = await api('POST', '/api/password', {flow: f.flow, password: $('password').value});
      if (!r.ok) { error(r.data.detail || r.data.code); return; }
      flow = null;
      result('password', 'Signed in with your password. Welcome, ' + f.username + '.');
    });

    $('again').addEventListener('click', reset);
    reset();
  }

  // ---- Phone panel ----

  const answers = {
    'approved': 'Approved: the sign-in went through.',
    'denied': 'Denied.',
    'fraud': 'Reported as fraud. Your administrator is told.'
  };

  function initPhones() {
    const root = $('phones');

    function renderIdle(p) {
      p.screen.replaceChildren(text('p', 'idle', 'No sign-in request.'));
      p.card.dataset.state = 'idle';
      p.attempt = null;
    }

    function renderPending(p, s) {
      p.attempt = s.attempt;
      p.card.dataset.state = 'pending';
      const box = text('div', 'request');
      box.dataset.attempt = s.attempt;
      box.append(text('p', 'title', 'Are you trying to sign in?'));
      box.append(text('p', 'who', s.upn));
      const ctx = text('dl', 'context');
      for (const [k, v] of [['App', s.context.app], ['IP', s.context.ip], ['Location', s.context.location]]) {
        if (!v) continue;
        ctx.append(text('dt', '', k), text('dd', '', v));
      }
      box.append(ctx);
      const deadline = Date.now() + s.expires_in_ms;
      const left = text('p', 'muted expiry');
      const tick = () => { left.textContent = 'Expires in ' + seconds(deadline - Date.now()) + ' s'; };
      tick();
      clearInterval(p.timer);
      p.timer = setInterval(tick, 500);
      if (s.mode === 'choose') {
        box.append(text('p', '', 'Tap the number shown on the sign-in page:'));
        const row = text('div', 'choices');
        for (const n of s.choices) {
          const b = text('button', 'choice', String(n));
          b.type = 'button';
          b.dataset.number = String(n);
          b.addEventListener('click', () => answer(p, s.attempt, 'approve', n));
          row.append(b);
        }
        box.append(row);
      } else {
        box.append(text('p', '', 'Type the number shown on the sign-in page:'));
        const row = text('div', 'choices');
        const input = text('input', 'typed');
        input.inputMode = 'numeric';
        input.maxLength = 2;
        const ok = text('button', 'approve', 'Approve');
        ok.type = 'button';
        ok.addEventListener('click', () => answer(p, s.attempt, 'approve', parseInt(input.value, 10) || 0));
        row.append(input, ok);
        box.append(row);
      }
      const deny = text('button', 'deny', 'No, it\'s not me');
      deny.type = 'button';
      deny.addEventListener('click', () => answer(p, s.attempt, 'deny', 0));
      const fraud = text('button', 'fraud link', 'Report fraud');
      fraud.type = 'button';
      fraud.addEventListener('click', () => answer(p, s.attempt, 'fraud', 0));
      box.append(text('div', 'actions'));
      box.lastChild.append(deny, fraud);
      box.append(left);
      p.screen.replaceChildren(box);
    }

    async function answer(p, attempt, decision, number) {
      for (const b of p.screen.querySelectorAll('button')) b.disabled = true;
      const r = await api('POST', '/api/phones/' + encodeURIComponent(p.id) + '/answer', {attempt: attempt, decision: decision, number: number});
      clearInterval(p.timer);
      let msg, state;
      if (r.ok) {
        state = r.data.state;
        msg = r.data.reason === 'signin.wrong_number' ? 'Wrong number: the sign-in was denied.' : (answers[r.data.state] || r.data.state);
      } else {
        state = 'error';
        msg = r.data.detail || r.data.code;
      }
      p.answered = attempt;
      p.card.dataset.state = 'answered';
      const out = text('p', 'phone-result', msg);
      out.dataset.state = state;
      p.screen.replaceChildren(out);
      p.attempt = null;
    }

    async function poll(p) {
      const r = await api('GET', '/api/phones/' + encodeURIComponent(p.id) + '/pending');
      if (r.ok) {
        const s = r.data.pending;
        if (s && s.attempt !== p.attempt && s.attempt !== p.answered) {
          renderPending(p, s);
        } else if (!s && p.attempt) {
          clearInterval(p.timer);
          renderIdle(p);
        }
        p.status.textContent = '';
      } else {
        p.status.textContent = r.data.detail || r.data.code;
      }
      setTimeout(() => poll(p), 1000);
    }

    (async () => {
      const r = await api('GET', '/api/phones');
      if (!r.ok) { root.textContent = r.data.detail || r.data.code; return; }
      if (r.data.phones.length === 0) { root.textContent = 'No phones.'; return; }
      for (const ph of r.data.phones) {
        const card = text('article', 'phone');
        card.id = 'phone-' + ph.id;
        const head = text('header');
        head.append(text('strong', '', ph.label), text('span', 'muted', ' ' + ph.upn + ' · ' + ph.platform));
        const screen = text('div', 'screen');
        const status = text('p', 'error small');
        card.append(head, screen, status);
        root.append(card);
        const p = {id: ph.id, card: card, screen: screen, status: status, attempt: null, answered: null, timer: null};
        renderIdle(p);
        poll(p);
      }
    })();
  }

  if ($('signin-form')) initLogin();
  if ($('phones')) initPhones();
})();
