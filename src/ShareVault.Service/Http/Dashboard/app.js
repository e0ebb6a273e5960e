// ShareVault members' dashboard: plain JavaScript, no build step, no dependency.
// Every decision a member makes here (joining, accepting a policy, a vote) is signed by the member's
// passkey over the canonical action (its SHA-256 is the WebAuthn challenge) and kept in the ledger.
'use strict';

const state = { pool: localStorage.getItem('sv.pool'), token: sessionStorage.getItem('sv.token'), me: null };
const view = document.getElementById('view');
// Messages live outside the view, so a live redraw does not wipe them; navigating clears them.
const flash = document.getElementById('flash');

// ---------------------------------------------------------------- helpers

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const b64e = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const b64d = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
const money = (n, cur) => `${(n / 100).toLocaleString('en', { minimumFractionDigits: 2 })} ${esc(cur ?? '')}`;
const shortTime = (t) => (t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) : '');

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && state.token && path !== '/auth/token') logout(false);
    const error = new Error(data?.detail ?? `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function message(text, kind = 'error') {
  const box = document.createElement('div');
  box.className = `msg ${kind}`;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.dataset.test = `msg-${kind}`;
  box.textContent = text;
  flash.replaceChildren(box);
}

// ---------------------------------------------------------------- passkeys (W3C WebAuthn Level 2)

function assertionJson(credential) {
  return {
    authenticatorData: b64e(credential.response.authenticatorData),
    clientDataJSON: b64e(credential.response.clientDataJSON),
    signature: b64e(credential.response.signature),
  };
}

async function assert(challenge, rpId, credentialId) {
  const publicKey = { challenge: b64d(challenge), rpId, userVerification: 'preferred', timeout: 60000 };
  if (credentialId) publicKey.allowCredentials = [{ type: 'public-key', id: b64d(credentialId) }];
  return navigator.credentials.get({ publicKey });
}

async function login(pool, member) {
  const challenge = await api('POST', '/auth/challenge', { pool, member });
  if (!challenge.credentialId) throw new Error(`Member '${member}' holds no passkey: log in with your key file (sharevault member login)`);
  const credential = await assert(challenge.hash, challenge.rpId, challenge.credentialId);
  const session = await api('POST', '/auth/token', { challenge: challenge.challenge, webauthn: assertionJson(credential) });
  state.token = session.token;
  sessionStorage.setItem('sv.token', session.token);
  setPool(pool);
  await loadMe();
}

function logout(redraw = true) {
  state.token = null;
  state.me = null;
  sessionStorage.removeItem('sv.token');
  flash.replaceChildren();
  showWho();
  if (redraw) route();
}

// Signs a member action: the server computes the canonical action (RFC 8785) and its SHA-256,
// which the passkey signs as the challenge; the ledger verifier recomputes both offline.
async function signAction(kind, body) {
  const hashed = await api('POST', '/actions/hash', { pool: state.me.pool, kind, body });
  const credential = await assert(hashed.challenge, state.me.rpId, state.me.credentialId);
  return { kid: state.me.kid, webauthn: { authenticator_data: b64e(credential.response.authenticatorData), client_data_json: b64e(credential.response.clientDataJSON), signature: b64e(credential.response.signature) } };
}

async function joinWithPasskey(pool, invitation) {
  const options = await api('POST', `/pools/${encodeURIComponent(pool)}/join/passkey-options`, { invitation });
  options.challenge = b64d(options.challenge);
  options.user.id = b64d(options.user.id);
  options.excludeCredentials = (options.excludeCredentials ?? []).map((c) => ({ ...c, id: b64d(c.id) }));
  delete options.hints;
  const created = await navigator.credentials.create({ publicKey: options });
  const attestation = {
    id: created.id,
    rawId: b64e(created.rawId),
    type: created.type,
    response: {
      attestationObject: b64e(created.response.attestationObject),
      clientDataJSON: b64e(created.response.clientDataJSON),
      transports: created.response.getTransports ? created.response.getTransports() : [],
    },
    clientExtensionResults: created.getClientExtensionResults ? created.getClientExtensionResults() : {},
  };
  const registered = await api('POST', `/pools/${encodeURIComponent(pool)}/join/passkey`, { invitation, attestation });
  // The new passkey signs its own join (proof of possession), which the ledger keeps.
  const signed = await assert(registered.challenge, registered.rpId, registered.credentialId);
  const memberSig = { kid: registered.kid, webauthn: { authenticator_data: b64e(signed.response.authenticatorData), client_data_json: b64e(signed.response.clientDataJSON), signature: b64e(signed.response.signature) } };
  await api('POST', `/pools/${encodeURIComponent(pool)}/join`, { invitation, member_sig: memberSig });
  await login(pool, registered.member);
}

// ---------------------------------------------------------------- charts (inline SVG)

// One line per numeric reading over time; records of the claim (inClaim) are marked.
function chart(records, title) {
  const series = {};
  for (const r of records) {
    for (const reading of r.readings ?? []) {
      const name = reading.n ?? reading.name;
      const value = reading.v ?? reading.value;
      if (typeof value !== 'number' || name === undefined) continue;
      (series[name] ??= { unit: reading.u ?? reading.unit ?? '', points: [] }).points.push({ t: Date.parse(r.time), v: value, mark: r.inClaim });
    }
  }
  const names = Object.keys(series);
  if (names.length === 0) return `<p class="muted">No readings yet.</p>`;
  const W = 640, H = 110, P = 28;
  return names.map((name) => {
    const { unit, points } = series[name];
    const ts = points.map((p) => p.t), vs = points.map((p) => p.v);
    const t0 = Math.min(...ts), t1 = Math.max(...ts) || t0 + 1, v0 = Math.min(...vs), v1 = Math.max(...vs);
    const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
    const y = (v) => H - P / 2 - ((v - v0) / (v1 - v0 || 1)) * (H - P * 1.5);
    const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
    const marks = points.filter((p) => p.mark).map((p) => `<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="3" fill="#cf222e"/>`).join('');
    return `<figure class="chart" data-test="chart-${esc(name)}"><figcaption><b>${esc(name)}</b> ${esc(unit)} <span class="muted">${esc(title ?? '')} · ${points.length} readings · ${esc(v0)}–${esc(v1)}</span></figcaption>
      <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(name)} over time">
        <line x1="${P}" y1="${H - P / 2}" x2="${W - P}" y2="${H - P / 2}" stroke="#d9e0e7"/>
        <text x="2" y="${y(v1) + 4}" font-size="10" fill="#5e6b78">${esc(v1)}</text><text x="2" y="${y(v0) + 4}" font-size="10" fill="#5e6b78">${esc(v0)}</text>
        <polyline fill="none" stroke="#1f6feb" stroke-width="2" points="${line}"/>${marks}
        <text x="${P}" y="${H - 2}" font-size="10" fill="#5e6b78">${esc(shortTime(t0))}</text><text x="${W - P}" y="${H - 2}" font-size="10" fill="#5e6b78" text-anchor="end">${esc(shortTime(t1))}</text>
      </svg></figure>`;
  }).join('');
}

// ---------------------------------------------------------------- pages

async function pickPool() {
  if (state.pool) return state.pool;
  const pools = await api('GET', '/pools');
  if (pools.length > 0) setPool(pools[0].id);
  return state.pool;
}

function setPool(pool) {
  state.pool = pool;
  localStorage.setItem('sv.pool', pool);
}

async function poolPage() {
  const pools = await api('GET', '/pools');
  const id = await pickPool();
  if (!id) return `<h1>No pool yet</h1><p>The operator creates one (<code>sharevault pool create</code>).</p>`;
  const [pool, members, ledger, treasury] = await Promise.all([api('GET', `/pools/${id}`), api('GET', `/pools/${id}/members`), api('GET', `/pools/${id}/ledger`),
    api('GET', `/pools/${id}/treasury`).catch((e) => (e.status === 404 ? null : { note: e.message }))]);
  const premiums = {}, keys = {};
  for (const e of ledger) {
    if (e.kind === 'premium') premiums[e.body.member] = (premiums[e.body.member] ?? 0) + e.body.amount;
    if (e.kind === 'member_joined') keys[e.body.member] = e.body.webauthn ? 'passkey' : e.body.key ? 'key file' : '—';
  }
  const paid = ledger.filter((e) => e.kind === 'payout').reduce((s, e) => s + e.body.amount, 0);
  const picker = pools.length > 1 ? `<p>Pool: ${pools.map((p) => `<a href="#/" data-pool="${esc(p.id)}">${esc(p.name)}</a>`).join(' · ')}</p>` : '';
  return `<h1 data-test="pool-name">${esc(pool.name)}</h1>${picker}
    <div class="cards">
      <div class="card"><div class="n" data-test="balance">${money(pool.balance, pool.currency)}</div><div class="l">balance (premiums − payouts)</div></div>
      <div class="card"><div class="n">${money(Object.values(premiums).reduce((a, b) => a + b, 0), pool.currency)}</div><div class="l">premiums received</div></div>
      <div class="card"><div class="n">${money(paid, pool.currency)}</div><div class="l">paid out</div></div>
      <div class="card"><div class="n">${members.length}</div><div class="l">members · max payout ${money(pool.maxPayout, pool.currency)}</div></div>
      ${treasury ? `<div class="card"><div class="n" data-test="treasury-balance">${treasury.balanceMinor == null ? '—' : money(treasury.balanceMinor, pool.currency)}</div>
        <div class="l">on chain${treasury.treasury ? ` · treasury <code>${esc(treasury.treasury)}</code> on chain ${esc(String(treasury.chainId))}` : ''}${treasury.note ? ` · ${esc(treasury.note)}` : ''}</div></div>` : ''}
    </div>
    <h2>Members</h2>
    <table data-test="members"><tr><th>member</th><th>name</th><th>signs with</th><th>premiums</th></tr>
      ${members.map((m) => `<tr><td>${esc(m.id)}</td><td>${esc(m.name)}</td><td>${esc(keys[m.id])}</td><td>${money(premiums[m.id] ?? 0, pool.currency)}</td></tr>`).join('')}
    </table>`;
}

function loginForm() {
  return `<h1>Members</h1><div class="row">
    <form id="login-form"><b>Log in with your passkey</b>
      <label>Pool <input name="pool" value="${esc(state.pool ?? '')}" required></label>
      <label>Member id <input name="member" required autocomplete="username webauthn"></label>
      <button type="submit" data-test="login">Log in with passkey</button></form>
    <form id="join-form"><b>Join with an invitation</b>
      <label>Pool <input name="pool" value="${esc(state.pool ?? '')}" required></label>
      <label>Invitation code <input name="invitation" required></label>
      <button type="submit" data-test="join">Create passkey and join</button></form></div>`;
}

async function mePage() {
  if (!state.me) return loginForm();
  if (state.me.role !== 'member') return `<h1>Operator</h1><p>Operators manage pools with the CLI or the API.</p>`;
  const { pool, member } = state.me;
  const [policies, devices, accepted] = await Promise.all([
    api('GET', `/pools/${pool}/policies`), api('GET', `/devices?pool=${encodeURIComponent(pool)}`), api('GET', `/pools/${pool}/ledger`),
  ]);
  const mine = policies.filter((p) => p.memberId === member);
  const acceptedIds = new Set(accepted.filter((e) => e.kind === 'policy_accepted').map((e) => e.body.policy));
  let html = `<h1>${esc(member)}'s policies and devices</h1><h2>Policies</h2>
    <table data-test="policies"><tr><th>policy</th><th>rule</th><th>payout</th><th>votes needed</th><th></th></tr>
    ${mine.length === 0 ? '<tr><td colspan="5" class="muted">No policy yet: the operator issues one to you.</td></tr>' : ''}${mine.map((p) => `<tr><td>${esc(p.id)}</td><td><code>${esc(p.rule)}</code><br><span class="mono muted">sha256 ${esc(p.ruleHash)}</span></td><td>${money(p.payoutAmount)}</td><td>${esc(p.votesRequired)}</td>
      <td>${acceptedIds.has(p.id) ? '<span class="status approved">accepted</span>' : `<button data-accept="${esc(p.id)}" data-hash="${esc(p.ruleHash)}">Accept</button>`}</td></tr>`).join('')}</table>
    <h2>Devices</h2>`;
  for (const d of devices.filter((x) => x.member === member)) {
    const records = await api('GET', `/devices/${encodeURIComponent(d.id)}/evidence?from=${Math.max(0, (d.maxSeq ?? 0) - 199)}&limit=200`);
    const latest = records[records.length - 1];
    html += `<h3 data-test="device-${esc(d.id)}">${esc(d.id)}</h3><p class="muted">enrolled ${esc(shortTime(d.enrolledAt))} · ${records.length} recent records${latest ? ` · latest #${esc(latest.seq)} at ${esc(shortTime(latest.time))}: ${(latest.readings ?? []).map((r) => `${esc(r.n ?? r.name)} = ${esc(r.v ?? r.value)} ${esc(r.u ?? r.unit ?? '')}`).join(', ')}` : ''}</p>${chart(records, d.id)}`;
  }
  html += `<h2>Enrol a device</h2><form id="device-form"><label>Device id <input name="device" required></label>
    <label>Device public key (PEM, P-256) <textarea name="key" rows="4" required></textarea></label>
    <button type="submit" data-test="enrol">Enrol with passkey</button></form>`;
  return html;
}

async function enrolDevice(device, pem) {
  const der = b64d(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''));
  const keySha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', der))].map((x) => x.toString(16).padStart(2, '0')).join('');
  const memberSig = await signAction('device_enrolled', { device, member: state.me.member, key_sha256: keySha256 });
  await api('POST', '/devices', { pool: state.me.pool, member: state.me.member, id: device, publicKey: pem, member_sig: memberSig });
}

async function claimsPage() {
  const id = await pickPool();
  const claims = await api('GET', `/claims?pool=${encodeURIComponent(id ?? '')}`);
  return `<h1>Claims</h1><table data-test="claims"><tr><th>claim</th><th>member</th><th>device</th><th>amount</th><th>status</th><th>opened</th></tr>
    ${claims.map((c) => `<tr><td><a href="#/claims/${esc(c.id)}">${esc(c.id)}</a></td><td>${esc(c.memberId)}</td><td>${esc(c.deviceId)}</td><td>${money(c.amount)}</td><td><span class="status ${esc(c.status)}">${esc(c.status)}</span></td><td>${esc(shortTime(c.openedAt))}</td></tr>`).join('')}</table>
    ${claims.length === 0 ? '<p class="muted">No claim yet.</p>' : ''}`;
}

async function claimPage(claimId) {
  const claim = await api('GET', `/claims/${encodeURIComponent(claimId)}`);
  const [evidence, ledger, policies] = await Promise.all([
    api('GET', `/claims/${encodeURIComponent(claimId)}/evidence`), api('GET', `/pools/${claim.poolId}/ledger`), api('GET', `/pools/${claim.poolId}/policies`),
  ]);
  const policy = policies.find((p) => p.id === claim.policyId);
  const trail = ledger.filter((e) => e.body.claim === claimId);
  const voted = trail.some((e) => e.kind === 'vote' && e.body.member === state.me?.member);
  const canVote = state.me?.role === 'member' && state.me.pool === claim.poolId && claim.status === 'opened' && state.me.member !== claim.memberId && !voted;
  const describe = (e) => {
    const b = e.body;
    switch (e.kind) {
      case 'claim_opened': return `opened: <code>${esc(b.rule)}</code> held from ${esc(shortTime(b.from))} to ${esc(shortTime(b.until))} over ${(b.evidence ?? []).length} records`;
      case 'vote': return `<b>${esc(b.member)}</b> voted to ${b.approve ? 'approve' : 'decline'} ${b.member_sig?.webauthn ? '(passkey signature)' : b.member_sig ? '(key signature)' : '(unsigned)'}`;
      case 'decision': return `decided <span class="status ${esc(b.decision)}">${esc(b.decision)}</span> by ${esc(b.by)}: ${esc(b.reason)}`;
      case 'payout': return `paid ${money(b.amount, b.currency)} (threshold signature, kid <code>${esc(b.kid)}</code>)`;
      default: return esc(e.kind);
    }
  };
  return `<h1>Claim <span class="mono">${esc(claim.id)}</span></h1>
    <div class="cards">
      <div class="card"><div class="n"><span class="status ${esc(claim.status)}" data-test="claim-status">${esc(claim.status)}</span></div><div class="l">status</div></div>
      <div class="card"><div class="n">${money(claim.amount)}</div><div class="l">amount · member ${esc(claim.memberId)}</div></div>
      <div class="card"><div class="n">${esc(policy?.votesRequired ?? 0)}</div><div class="l">votes needed · policy ${esc(claim.policyId)}</div></div>
    </div>
    <h2>Rule</h2><p><code>${esc(policy?.rule)}</code> <span class="mono muted">sha256 ${esc(claim.ruleHash)}</span></p>
    <h2>Evidence timeline (device ${esc(claim.deviceId)})</h2>${chart(evidence, 'claim records in red')}
    <h2>Decision trail</h2><ol class="trail" data-test="trail">${trail.map((e) => `<li><span class="muted">#${e.seq} ${esc(shortTime(e.time))}</span> ${describe(e)}</li>`).join('')}</ol>
    ${canVote ? `<h2>Your vote</h2><p><button data-vote="true" data-test="approve">Approve with passkey</button> <button class="secondary" data-vote="false" data-test="decline">Decline with passkey</button></p>` : ''}`;
}

async function ledgerPage() {
  const id = await pickPool();
  const [entries, checkpoints] = await Promise.all([api('GET', `/pools/${id}/ledger`), api('GET', `/pools/${id}/ledger/checkpoints`)]);
  const head = entries[entries.length - 1];
  return `<h1>Ledger of ${esc(id)}</h1>
    <p>${entries.length} entries, head <span class="mono">${esc(head?.hash)}</span>. Check it offline: <code>sharevault ledger export --pool ${esc(id)} --out ledger.json &amp;&amp; sharevault ledger verify --in ledger.json</code></p>
    <h2>Checkpoints (signed by the pool's threshold key)</h2>
    <table data-test="checkpoints"><tr><th>seq</th><th>time</th><th>entry hash</th></tr>${checkpoints.map((c) => `<tr><td>${esc(c.sequence)}</td><td>${esc(shortTime(c.time))}</td><td class="mono">${esc(c.hash)}</td></tr>`).join('')}</table>
    <h2>Entries</h2><table><tr><th>seq</th><th>kind</th><th>time</th><th>signed by</th></tr>
    ${entries.slice().reverse().slice(0, 50).map((e) => `<tr><td>${e.seq}</td><td>${esc(e.kind)}</td><td>${esc(shortTime(e.time))}</td><td>${e.body.member_sig ? `member ${esc(e.body.member)}` : ''}${e.body.admin ? ' admin' : ''}</td></tr>`).join('')}</table>`;
}

// ---------------------------------------------------------------- routing, events

async function loadMe() {
  if (!state.token) return;
  try {
    state.me = await api('GET', '/me');
  } catch {
    state.me = null;
  }
  showWho();
}

function showWho() {
  const who = document.getElementById('who');
  who.innerHTML = state.me ? `${esc(state.me.member ?? 'operator')} <button class="secondary" id="logout">Log out</button>` : '<a href="#/me">Log in</a>';
}

let rendering = Promise.resolve();
function route() {
  rendering = rendering.then(render, render);
  return rendering;
}

async function render() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const parts = hash.split('/').filter(Boolean);
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.route === (parts[0] ?? 'pool')));
  try {
    const html = parts[0] === 'me' ? await mePage() : parts[0] === 'claims' && parts[1] ? await claimPage(decodeURIComponent(parts[1]))
      : parts[0] === 'claims' ? await claimsPage() : parts[0] === 'ledger' ? await ledgerPage() : await poolPage();
    view.innerHTML = html;
    view.dataset.page = parts[0] ?? 'pool';
  } catch (e) {
    view.innerHTML = '';
    message(e.message);
  }
}

document.addEventListener('click', async (event) => {
  const target = event.target.closest('button, a[data-pool]');
  if (!target) return;
  try {
    if (target.id === 'logout') return logout();
    if (target.dataset.pool) return setPool(target.dataset.pool), route();
    if (target.dataset.vote !== undefined) {
      flash.replaceChildren();
      target.disabled = true;
      const claimId = decodeURIComponent(location.hash.split('/')[2]);
      const approve = target.dataset.vote === 'true';
      const memberSig = await signAction('vote', { claim: claimId, member: state.me.member, approve });
      const result = await api('POST', `/claims/${encodeURIComponent(claimId)}/votes`, { approve, member_sig: memberSig });
      await route();
      message(`Your signed vote is in the ledger; the claim is ${result.status}.`, 'ok');
    }
    if (target.dataset.accept) {
      const memberSig = await signAction('policy_accepted', { policy: target.dataset.accept, member: state.me.member, rule_hash: target.dataset.hash });
      await api('POST', `/pools/${state.me.pool}/policies/${encodeURIComponent(target.dataset.accept)}/accept`, { member_sig: memberSig });
      await route();
      message('Policy accepted with your signature.', 'ok');
    }
  } catch (e) {
    message(e.message);
  }
});

document.addEventListener('submit', async (event) => {
  event.preventDefault();
  flash.replaceChildren();
  const form = new FormData(event.target);
  try {
    if (event.target.id === 'login-form') await login(form.get('pool').trim(), form.get('member').trim());
    if (event.target.id === 'join-form') await joinWithPasskey(form.get('pool').trim(), form.get('invitation').trim());
    if (event.target.id === 'device-form') {
      await enrolDevice(form.get('device').trim(), form.get('key'));
      document.activeElement?.blur();
      await route();
      return message(`Device ${form.get('device').trim()} enrolled with your signature.`, 'ok');
    }
    await route();
    message(`Logged in as ${state.me.member}.`, 'ok');
  } catch (e) {
    message(e.message);
  }
});

// Live updates: the server says when evidence, entries or checkpoints change; the page redraws.
function listen() {
  const live = document.getElementById('live');
  const events = new EventSource('/events');
  let first = true;
  events.addEventListener('change', () => {
    live.classList.add('on');
    if (!first && !view.querySelector('form:focus-within')) route();
    first = false;
  });
  events.onerror = () => live.classList.remove('on');
}

window.addEventListener('hashchange', () => {
  flash.replaceChildren();
  route();
});
loadMe().then(route).then(listen);
