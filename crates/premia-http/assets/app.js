// premia dashboard. Plain script, no dependencies, served by the binary.
//
// Money never becomes a JavaScript number: the API sends amounts as decimal strings ("1234.50")
// and they are only regrouped for display. The achievement ratio is turned into a number for
// one thing only, the width of the progress bar.
//
// Live updates: the page reads the manager's feed (Server-Sent Events) with fetch(), because
// EventSource cannot send the Authorization header. Each feed message carries the period's
// totals after a committed batch and the entries that batch booked; the page applies it at
// once, then re-reads the statement shortly after to stay exactly in line with the ledger.
'use strict';

(() => {
  const TEXT = {
    en: {
      manager: 'Manager', period: 'Period', language: 'Language', signOut: 'Sign out',
      signInTitle: 'Sign in', tokenLabel: 'Access token', signIn: 'Sign in',
      tokenHint: 'Your administrator gives you a token. It stays in this browser tab only.',
      booked: 'Booked this period', commission: 'Commission', clawback: 'Clawbacks', fines: 'Fines',
      planBonus: 'Plan bonus', bonus: 'Plan bonus', progress: 'Progress to plan', overdue: 'Overdue deals',
      overdueNone: 'No overdue deals.', deal: 'Deal', client: 'Client', due: 'Due', outstanding: 'Outstanding',
      daysLate: 'Days late', entries: 'Entries', why: 'How it was worked out', rule: 'Rule', entriesNone: 'Nothing booked in this period yet.',
      projected: 'projected', bookedStatus: 'booked', noPlan: 'No plan assigned for this period.',
      planLine: (target, actual, metric, coefficient) =>
        `Plan ${target}, actual ${actual} (${metric}); coefficient ${coefficient}.`,
      achievement: (pct) => `${pct} of plan`,
      open: 'open', closed: 'closed',
      live: 'Live', reconnecting: 'Reconnecting…', offline: 'Not connected',
      updated: (time) => `Updated ${time}`,
      badToken: 'This token was not accepted. Check it and sign in again.',
      publisherOnly: 'This token may only publish events; it cannot read statements.',
      nothingYet: 'The ledger has nothing yet. This page fills in as soon as something is booked.',
      failed: (why) => `Could not load: ${why}`,
      kinds: { commission: 'Commission', clawback: 'Clawback', fine: 'Fine', plan_bonus: 'Plan bonus' },
      metrics: { received: 'money received', margin_received: 'margin received', booked: 'deals booked' },
    },
    ru: {
      manager: 'Менеджер', period: 'Период', language: 'Язык', signOut: 'Выйти',
      signInTitle: 'Вход', tokenLabel: 'Токен доступа', signIn: 'Войти',
      tokenHint: 'Токен выдаёт администратор. Он хранится только в этой вкладке браузера.',
      booked: 'Начислено за период', commission: 'Комиссия', clawback: 'Возвраты', fines: 'Штрафы',
      planBonus: 'Премия за план', bonus: 'Премия за план', progress: 'Выполнение плана', overdue: 'Просроченные сделки',
      overdueNone: 'Просроченных сделок нет.', deal: 'Сделка', client: 'Клиент', due: 'Срок', outstanding: 'Долг',
      daysLate: 'Просрочка, дн.', entries: 'Начисления', why: 'Как посчитано', rule: 'Правило', entriesNone: 'В этом периоде пока ничего не начислено.',
      projected: 'прогноз', bookedStatus: 'начислено', noPlan: 'План на этот период не назначен.',
      planLine: (target, actual, metric, coefficient) =>
        `План ${target}, факт ${actual} (${metric}); коэффициент ${coefficient}.`,
      achievement: (pct) => `${pct} плана`,
      open: 'открыт', closed: 'закрыт',
      live: 'В реальном времени', reconnecting: 'Переподключение…', offline: 'Нет соединения',
      updated: (time) => `Обновлено ${time}`,
      badToken: 'Токен не принят. Проверьте его и войдите снова.',
      publisherOnly: 'Этот токен может только публиковать события и не видит ведомостей.',
      nothingYet: 'В реестре пока ничего нет. Страница заполнится, как только что-то будет начислено.',
      failed: (why) => `Не удалось загрузить: ${why}`,
      kinds: { commission: 'Комиссия', clawback: 'Возврат', fine: 'Штраф', plan_bonus: 'Премия за план' },
      metrics: { received: 'поступления', margin_received: 'маржа поступлений', booked: 'сумма сделок' },
    },
  };
  const NBSP = '\u00a0';
  const SYMBOLS = { RUB: '₽', EUR: '€', USD: '$' };

  const $ = (id) => document.getElementById(id);
  const state = {
    token: sessionStorage.getItem('premia.token') || '',
    lang: localStorage.getItem('premia.lang') || (/^ru\b/i.test(navigator.language || '') ? 'ru' : 'en'),
    role: null,
    manager: null,
    period: null,
    periods: [],
    currency: 'RUB',
    statement: null, // this manager's part of the statement, as the API sent it
    status: 'open',
    overdue: null,
    entryKeys: new Set(),
    ledgerSeq: 0, // of the latest feed message applied
    feed: null, // AbortController of the feed connection
    refreshTimer: null,
  };
  const t = (key) => TEXT[state.lang][key] ?? TEXT.en[key];

  // "-1234567.8" -> "-1 234 567,80 ₽" (ru) or "-1,234,567.80 ₽" (en). Exact: string work only.
  function money(text) {
    if (text === undefined || text === null || text === '') return '–';
    let s = String(text).trim();
    const negative = s.startsWith('-');
    if (negative || s.startsWith('+')) s = s.slice(1);
    const [whole, fraction = ''] = s.split('.');
    const cents = (fraction + '00').slice(0, 2);
    const group = state.lang === 'ru' ? NBSP : ',';
    const point = state.lang === 'ru' ? ',' : '.';
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, group);
    const symbol = SYMBOLS[state.currency] || state.currency;
    return `${negative ? '-' : ''}${grouped}${point}${cents}${NBSP}${symbol}`;
  }

  // A ratio with decimals ("1.0350") as a percentage ("103.5 %"), by moving the point.
  function percent(ratio) {
    const [whole, fraction = ''] = String(ratio).split('.');
    const digits = (fraction + '00');
    let integer = String(Number(whole + digits.slice(0, 2))); // integer part: no rounding involved
    let rest = digits.slice(2).replace(/0+$/, '');
    if (whole.startsWith('-') && integer[0] !== '-') integer = '-' + integer;
    const point = state.lang === 'ru' ? ',' : '.';
    return `${integer}${rest ? point + rest : ''}${NBSP}%`;
  }

  function decimalText(ratio) {
    return state.lang === 'ru' ? String(ratio).replace('.', ',') : String(ratio);
  }

  function show(id, visible) { $(id).hidden = !visible; }

  function message(text) {
    $('message').textContent = text || '';
    show('message', Boolean(text));
  }

  function setLive(mode) {
    const live = $('live');
    live.dataset.state = mode;
    live.textContent = mode === 'on' ? t('live') : mode === 'retry' ? t('reconnecting') : t('offline');
  }

  function touched() {
    const time = new Date().toLocaleTimeString(state.lang === 'ru' ? 'ru-RU' : 'en-GB');
    $('updated').textContent = TEXT[state.lang].updated(time);
  }

  class Unauthorized extends Error {}

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
    if (response.status === 401) throw new Unauthorized();
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.error || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // ---- labels --------------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    $('lang').value = state.lang;
    for (const element of document.querySelectorAll('[data-i18n]')) {
      const text = t(element.dataset.i18n);
      if (typeof text === 'string') element.textContent = text;
    }
    fillPeriods();
    setLive($('live').dataset.state || 'off');
    render();
  }

  // ---- sign-in -------------------------------------------------------------------------------

  function signOut(reason) {
    stopFeed();
    sessionStorage.removeItem('premia.token');
    state.token = '';
    state.role = null;
    state.statement = null;
    state.overdue = null;
    show('board', false);
    show('sign-out', false);
    show('manager-control', false);
    show('period-control', false);
    message('');
    $('sign-in-error').textContent = reason || '';
    show('sign-in-error', Boolean(reason));
    show('sign-in', true);
    $('token').focus();
  }

  async function start() {
    if (!state.token) {
      signOut();
      return;
    }
    show('sign-in', false);
    show('sign-out', true);
    try {
      const me = await api('/v1/whoami');
      state.role = me.role;
      if (me.role === 'publisher') {
        message(t('publisherOnly'));
        return;
      }
      const wanted = new URLSearchParams(location.search);
      if (me.role === 'manager') {
        state.manager = me.manager_id;
      } else {
        const { managers } = await api('/v1/managers');
        const select = $('manager');
        select.replaceChildren(...managers.map((id) => new Option(id, id)));
        state.manager = managers.includes(wanted.get('manager')) ? wanted.get('manager') : managers[0] || null;
        if (state.manager) select.value = state.manager;
        show('manager-control', managers.length > 0);
      }
      const { periods, current } = await api('/v1/periods');
      state.periods = periods;
      const asked = wanted.get('period');
      state.period = periods.some((p) => p.period === asked) ? asked : current;
      fillPeriods();
      if (!state.manager || !state.period) message(t('nothingYet'));
      if (state.manager) startFeed();
    } catch (error) {
      if (error instanceof Unauthorized) signOut(t('badToken'));
      else message(TEXT[state.lang].failed(error.message));
    }
  }

  function fillPeriods() {
    const select = $('period');
    const label = (p) => `${p.period} · ${t(p.status)}`;
    select.replaceChildren(...[...state.periods].reverse().map((p) => new Option(label(p), p.period)));
    if (state.period) select.value = state.period;
    show('period-control', state.periods.length > 0);
  }

  function remember() {
    const query = new URLSearchParams();
    if (state.role !== 'manager' && state.manager) query.set('manager', state.manager);
    if (state.period) query.set('period', state.period);
    history.replaceState(null, '', `${location.pathname}?${query}`);
  }

  // ---- the board -------------------------------------------------------------------------------

  async function loadBoard() {
    if (!state.manager || !state.period) return;
    const manager = encodeURIComponent(state.manager);
    const asked = `${state.manager}/${state.period}`;
    try {
      const [statement, overdue] = await Promise.all([
        api(`/v1/managers/${manager}/statements/${state.period}`).catch((error) => {
          // A manager with nothing booked anywhere yet: an empty board, not an error.
          if (error.status === 404) return { managers: [], status: 'open', currency: state.currency };
          throw error;
        }),
        api(`/v1/managers/${manager}/overdue/${state.period}`).catch((error) => {
          if (error.status === 404) return { deals: [], outstanding: '0.00' };
          throw error;
        }),
      ]);
      if (asked !== `${state.manager}/${state.period}`) return; // the choice changed meanwhile
      state.currency = statement.currency || state.currency;
      state.status = statement.status;
      state.statement = statement.managers.find((m) => m.manager_id === state.manager) || null;
      state.entryKeys = new Set((state.statement?.entries || []).map(entryKey));
      state.overdue = overdue;
      message('');
      show('board', true);
      render();
      touched();
    } catch (error) {
      if (error instanceof Unauthorized) signOut(t('badToken'));
      else message(TEXT[state.lang].failed(error.message));
    }
  }

  function entryKey(entry) {
    return [entry.event?.seq, entry.kind, entry.deal_id, entry.payment_id, entry.refund_id].join('/');
  }

  function render() {
    if (!state.role || $('board').hidden && !state.statement) return;
    const m = state.statement;
    const total = $('total');
    total.textContent = money(m ? m.total : '0');
    total.dataset.amount = m ? m.total : '0.00';
    total.classList.toggle('negative', Boolean(m && m.total.startsWith('-')));
    $('commission').textContent = money(m ? m.commission : '0');
    $('clawback').textContent = money(m ? m.clawback : '0');
    $('fines').textContent = money(m ? m.fines : '0');
    $('plan-bonus').textContent = money(m ? m.plan_bonus : '0');
    renderPlan(m && m.plan);
    renderOverdue();
    renderEntries(m ? m.entries : []);
  }

  function renderPlan(plan) {
    const fill = $('progress-fill');
    const status = $('bonus-status');
    if (!plan) {
      $('bonus').textContent = '–';
      status.textContent = '';
      status.className = 'badge';
      $('plan-line').textContent = t('noPlan');
      $('achievement').textContent = '';
      fill.style.width = '0';
      fill.className = 'fill';
      $('progress').setAttribute('aria-valuenow', '0');
      return;
    }
    $('bonus').textContent = money(plan.bonus);
    status.textContent = plan.status === 'booked' ? t('bookedStatus') : t('projected');
    status.className = `badge ${plan.status}`;
    const metric = TEXT[state.lang].metrics[plan.metric] || plan.metric;
    $('plan-line').textContent =
      TEXT[state.lang].planLine(money(plan.target), money(plan.actual), metric, decimalText(plan.coefficient));
    $('achievement').textContent = TEXT[state.lang].achievement(percent(plan.achievement));
    const ratio = Number(plan.achievement); // drawing only
    // The bar spans 0 to 150 %; two decimals of a percent are finer than a pixel.
    fill.style.width = `${Math.round(Math.max(0, Math.min(ratio, 1.5)) / 1.5 * 10000) / 100}%`;
    const tier = ratio < 0.5 ? 0 : ratio < 0.75 ? 1 : ratio < 1 ? 2 : ratio <= 1.5 ? 3 : 4;
    fill.className = `fill tier-${tier}`;
    $('progress').setAttribute('aria-valuenow', String(Math.round(ratio * 100)));
  }

  function renderOverdue() {
    const overdue = state.overdue || { deals: [] };
    const rows = overdue.deals.map((deal) => {
      const row = document.createElement('tr');
      // Deal and client share a cell, so that the table fits a phone's width.
      const who = document.createElement('td');
      const id = document.createElement('span');
      id.className = 'deal';
      id.textContent = deal.deal_id;
      const client = document.createElement('span');
      client.className = 'client';
      client.textContent = deal.client_id;
      who.append(id, client);
      row.append(who);
      const cells = [deal.due_date, money(deal.outstanding),
        deal.days_overdue === null || deal.days_overdue === undefined ? '–' : String(deal.days_overdue)];
      cells.forEach((text, i) => {
        const cell = document.createElement('td');
        cell.textContent = text;
        if (i >= 1) cell.className = 'num';
        row.append(cell);
      });
      return row;
    });
    $('overdue-rows').replaceChildren(...rows);
    show('overdue-table', rows.length > 0);
    show('overdue-none', rows.length === 0);
    $('overdue-total').textContent = rows.length > 0 ? `· ${money(overdue.outstanding)}` : '';
  }

  function entryItem(entry) {
    const item = document.createElement('li');
    const kind = document.createElement('span');
    kind.className = 'kind';
    kind.textContent = TEXT[state.lang].kinds[entry.kind] || entry.kind;
    const amount = document.createElement('span');
    amount.className = 'amount' + (entry.amount.startsWith('-') ? ' negative' : '');
    amount.textContent = money(entry.amount);
    const why = document.createElement('span');
    why.className = 'why';
    why.textContent = entry.explanation;
    const ref = document.createElement('span');
    ref.className = 'ref';
    ref.textContent = `seq ${entry.event.seq} · ${entry.event.type}${entry.adjustment_of ? ` · ${entry.adjustment_of}` : ''}`;
    item.append(kind, amount, why, ref, workings(entry));
    return item;
  }

  // "How it was worked out": the arithmetic and the rule, from /v1/explain, read when opened.
  function workings(entry) {
    const details = document.createElement('details');
    details.className = 'workings';
    const summary = document.createElement('summary');
    summary.textContent = t('why');
    const body = document.createElement('div');
    details.append(summary, body);
    const path = entry.payment_id ? `/v1/explain/payments/${encodeURIComponent(entry.payment_id)}`
      : entry.deal_id ? `/v1/explain/deals/${encodeURIComponent(entry.deal_id)}`
        : null;
    let loaded = false;
    details.addEventListener('toggle', async () => {
      if (!details.open || loaded || !path) return;
      loaded = true;
      try {
        const answer = await api(path);
        const mine = (answer.entries || []).find((e) =>
          e.entry.event.seq === entry.event.seq && e.entry.kind === entry.kind && e.manager_id === state.manager);
        if (!mine) throw new Error('not found');
        const formula = document.createElement('code');
        formula.className = 'formula';
        formula.textContent = mine.formula;
        const rule = document.createElement('p');
        rule.className = 'rule';
        rule.textContent = `${t('rule')}: ${mine.rule}`;
        body.replaceChildren(formula, rule);
      } catch (error) {
        loaded = false;
        body.textContent = TEXT[state.lang].failed(error.message);
      }
    });
    if (!path) details.hidden = true;
    return details;
  }

  function renderEntries(entries) {
    // Newest first; the statement lists them in booking order.
    $('entries').replaceChildren(...[...entries].reverse().map(entryItem));
    show('entries-none', entries.length === 0);
  }

  // ---- live feed -----------------------------------------------------------------------------

  function stopFeed() {
    if (state.feed) state.feed.abort();
    state.feed = null;
    setLive('off');
  }

  function startFeed() {
    stopFeed();
    state.ledgerSeq = 0;
    const controller = new AbortController();
    state.feed = controller;
    followFeed(controller, state.manager).catch(() => {});
  }

  async function followFeed(controller, manager) {
    let lastId = null;
    let delay = 1000;
    while (!controller.signal.aborted) {
      try {
        const headers = { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const response = await fetch(`/v1/managers/${encodeURIComponent(manager)}/feed`,
          { headers, signal: controller.signal, cache: 'no-store' });
        if (response.status === 401) { signOut(t('badToken')); return; }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        setLive('on');
        delay = 1000;
        // The feed's consumer exists once the headers are here: read the board now, and
        // nothing booked after this read is missed.
        await loadBoard();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = [];
            let id = null;
            for (const line of block.split('\n')) {
              if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
              else if (line.startsWith('id:')) id = line.slice(3).trim();
            }
            if (id) lastId = id;
            if (data.length > 0) applyMessage(JSON.parse(data.join('\n')));
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      setLive('retry');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  // One feed message (schemas/feed/accrual.json): after the batch that ended at ledger_seq,
  // the manager's totals in each period it touched, with the entries it booked there.
  function applyMessage(feedMessage) {
    if (feedMessage.manager_id !== state.manager) return;
    // Messages come in ledger order; one older than what is shown would only set totals back.
    if (feedMessage.ledger_seq < state.ledgerSeq) return;
    state.ledgerSeq = feedMessage.ledger_seq;
    for (const update of feedMessage.updates || []) applyUpdate({ ...update, manager_id: feedMessage.manager_id });
  }

  function applyUpdate(update) {
    if (!state.periods.some((p) => p.period === update.period)) {
      state.periods = [...state.periods, { period: update.period, status: update.status }]
        .sort((a, b) => a.period.localeCompare(b.period));
      if (!state.period) { state.period = update.period; remember(); }
      fillPeriods();
    }
    if (update.period !== state.period) return;
    const previous = state.statement;
    const entries = previous ? [...previous.entries] : [];
    for (const entry of update.entries || []) {
      const key = entryKey(entry);
      if (!state.entryKeys.has(key)) {
        state.entryKeys.add(key);
        entries.push(entry);
      }
    }
    state.statement = { ...update, entries };
    state.status = update.status;
    message('');
    show('board', true);
    render();
    const total = $('total');
    total.classList.remove('flash');
    void total.offsetWidth; // restart the animation
    total.classList.add('flash');
    touched();
    // Re-read shortly after, once a burst of batches is over: the overdue list is not in the
    // feed, and the statement read settles any message that arrived out of step with it.
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(loadBoard, 1500);
  }

  // ---- wiring --------------------------------------------------------------------------------

  function init() {
    $('lang').addEventListener('change', (event) => {
      state.lang = event.target.value;
      localStorage.setItem('premia.lang', state.lang);
      applyLanguage();
    });
    $('sign-in-form').addEventListener('submit', (event) => {
      event.preventDefault();
      state.token = $('token').value.trim();
      $('token').value = '';
      sessionStorage.setItem('premia.token', state.token);
      start();
    });
    $('sign-out').addEventListener('click', () => signOut());
    $('manager').addEventListener('change', (event) => {
      state.manager = event.target.value;
      state.statement = null;
      remember();
      startFeed();
    });
    $('period').addEventListener('change', (event) => {
      state.period = event.target.value;
      state.statement = null;
      remember();
      loadBoard();
    });
    applyLanguage();
    setLive('off');
    start();
  }

  init();
})();
