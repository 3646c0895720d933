// The Kvorum dashboard page: polls /api/state every second and redraws what changed.
// Plain DOM and SVG, no framework: the page is a ring, a table, a few bars and two line
// charts, and building them by hand keeps it one small file with nothing to install.
'use strict'

/** Pause between polls until the server tells its --interval, ms. */
let pollMs = 1000
/** Longest wait for one answer of the dashboard server, ms. */
const FETCH_TIMEOUT_MS = 3000
const SVG = 'http://www.w3.org/2000/svg'
const RING_OUTER = 200
const RING_INNER = 140

let ring = null
let rows = new Map()
let legendItems = new Map()
/** Updates drawn, and the time they took in all (in body's data-updates and data-draw-ms: what the scale benchmark reads). */
let updates = 0
let drawMs = 0

/** A distinct colour per node index: hues a golden angle apart, two lightness bands for more than 12 nodes. */
function colour(i) {
  const hue = Math.round((i * 137.508) % 360)
  const light = i % 2 === 0 ? 48 : 62
  return `hsl(${hue} 65% ${light}%)`
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  if (text !== undefined) node.textContent = text
  return node
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  return node
}

function bytes(n) {
  if (n < 1024) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`
}

function fixed(n, digits = 1) {
  return Number.isFinite(n) ? n.toFixed(digits) : '–'
}

async function getJson(path) {
  const res = await fetch(path, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), cache: 'no-store' })
  if (res.status === 503) return null
  if (!res.ok) throw new Error(`${path} answered ${res.status}`)
  return res.json()
}

/** The arc of partition q of `count` as an SVG path (an annulus sector). */
function sector(q, count, outer, inner) {
  const a0 = (q / count) * 2 * Math.PI - Math.PI / 2
  const a1 = ((q + 1) / count) * 2 * Math.PI - Math.PI / 2
  const p = (r, a) => `${(r * Math.cos(a)).toFixed(2)} ${(r * Math.sin(a)).toFixed(2)}`
  return `M${p(outer, a0)}A${outer} ${outer} 0 0 1 ${p(outer, a1)}L${p(inner, a1)}A${inner} ${inner} 0 0 0 ${p(inner, a0)}Z`
}

/** Draw every partition of the ring once per definition version. */
function drawRing(view) {
  const svg = document.getElementById('ring')
  svg.replaceChildren()
  const ids = view.nodes.map((n) => n.id)
  const moving = new Map((view.move?.moving ?? []).map((m) => [m.partition, m.to]))
  const frag = document.createDocumentFragment()
  for (let q = 0; q < view.partitions; q++) {
    const owner = view.owner[q]
    const path = svgEl('path', { d: sector(q, view.partitions, RING_OUTER, RING_INNER), fill: colour(owner), 'data-partition': q, 'data-owner': ids[owner] ?? '?' })
    const prefs = (view.preference[q] ?? []).map((i) => ids[i] ?? '?').join(', ')
    let text = `partition ${q}: owner ${ids[owner] ?? '?'}`
    if (view.store) text += `; ${view.store.name} (n=${view.store.n}) reads ask ${prefs}`
    if (moving.has(q)) {
      const to = moving.get(q)
      path.classList.add('moving')
      text += `; moving to ${ids[to] ?? '?'} (step ${view.move.step}/${view.move.steps}, ${view.move.stage})`
      frag.append(svgEl('path', { class: 'marker', d: sector(q, view.partitions, RING_OUTER + 8, RING_OUTER + 2), stroke: colour(to) }))
    }
    const title = svgEl('title')
    title.textContent = text
    path.append(title)
    frag.append(path)
  }
  svg.append(frag)
  const label = svgEl('text', { x: 0, y: -6, 'text-anchor': 'middle', 'font-size': 22 })
  label.textContent = `${view.partitions} partitions`
  const sub = svgEl('text', { x: 0, y: 18, 'text-anchor': 'middle', 'font-size': 13, fill: '#6b7585' })
  sub.textContent = view.move ? `step ${view.move.step}/${view.move.steps}: ${view.move.stage}, ${view.move.moving.length} moving` : `definition v${view.version}`
  svg.append(label, sub)
  const caption = document.getElementById('ring-caption')
  caption.textContent = view.move
    ? `A change is in progress (plan ${view.move.planId}): outlined partitions are moving; the outer mark is their next owner's colour.`
    : 'Hover a partition for its owner and preference list.'
  const legend = document.getElementById('legend')
  legend.replaceChildren()
  legendItems = new Map()
  const counts = new Map()
  for (const o of view.owner) counts.set(o, (counts.get(o) ?? 0) + 1)
  view.nodes.forEach((n, i) => {
    const li = el('li', { style: `--c: ${colour(i)}`, 'data-node': n.id }, `${n.id} (${counts.get(i) ?? 0})`)
    legend.append(li)
    legendItems.set(n.id, li)
  })
  rows = new Map()
  document.querySelector('#nodes tbody').replaceChildren()
}

const COLUMNS = ['node', 'state', 'p50', 'p99', 'ops', 'errors', 'queue', 'keys', 'database', 'hints', 'definition']

function nodeRow(node) {
  let row = rows.get(node.id)
  if (!row) {
    row = el('tr', { 'data-node': node.id })
    for (const c of COLUMNS) row.append(el('td', { class: c }))
    const i = ring ? ring.nodes.findIndex((n) => n.id === node.id) : -1
    row.firstChild.style.setProperty('--c', colour(Math.max(0, i)))
    row.firstChild.title = node.url
    document.querySelector('#nodes tbody').append(row)
    rows.set(node.id, row)
  }
  return row
}

/** Set a cell's text only when it changed: an unchanged page then costs the browser no layout. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text
}

function drawNodes(nodes) {
  for (const node of nodes) {
    const row = nodeRow(node)
    const cells = row.children
    if (row.dataset.up !== String(node.up) || (node.error ?? '') !== (row.dataset.error ?? '')) {
      row.dataset.up = String(node.up)
      row.dataset.error = node.error ?? ''
      row.className = node.up ? '' : 'down'
      const badge = el('span', { class: `badge ${node.up ? 'up' : 'down'}` }, node.up ? 'up' : 'DOWN')
      if (node.error) badge.title = node.error
      cells[1].replaceChildren(badge)
      legendItems.get(node.id)?.classList.toggle('down', !node.up)
    }
    const sampled = node.latencySamples > 0
    const texts = [
      node.id,
      null,
      sampled ? fixed(node.latencyMsP50, 2) : '–',
      sampled ? fixed(node.latencyMsP99, 2) : '–',
      node.up ? fixed(node.opsPerSecond) : '–',
      node.up ? fixed(node.errorsPerSecond) : '–',
      `${node.writeQueueDepth} / ${node.sdkQueued}`,
      node.up ? String(node.keys) : '–',
      node.up ? bytes(node.databaseBytes) : '–',
      node.up ? String(node.hintsHeld) : '–',
      node.up ? `v${node.clusterVersion}` : '–',
    ]
    texts.forEach((t, i) => t !== null && setText(cells[i], t))
  }
}

/** The last input each panel was drawn from, so an unchanged panel is left alone. */
const drawnFrom = new Map()
function changed(panel, input) {
  const key = JSON.stringify(input)
  if (drawnFrom.get(panel) === key) return false
  drawnFrom.set(panel, key)
  return true
}

function bar(fraction) {
  const outer = el('div', { class: 'bar' })
  const inner = el('div')
  inner.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`
  outer.append(inner)
  return outer
}

function facts(pairs) {
  const dl = el('dl')
  for (const [k, v] of pairs) dl.append(el('dt', {}, k), el('dd', {}, v))
  return dl
}

function drawRebalance(r) {
  const box = document.getElementById('rebalance')
  if (!r) {
    box.dataset.active = 'false'
    box.replaceChildren(el('p', { class: 'muted' }, 'No membership change in progress.'))
    return
  }
  box.dataset.active = 'true'
  box.dataset.step = String(r.step)
  box.dataset.stage = r.stage
  box.dataset.done = String(r.entriesDone)
  const stages = ['write-both', 'read-new', 'use-new', 'cleanup']
  const stepFraction = (r.step - 1 + (stages.indexOf(r.stage) + 1) / stages.length) / r.steps
  const total = r.entriesTotal
  box.replaceChildren(
    facts([
      ['plan', r.planId],
      ['step', `${r.step} of ${r.steps}, stage ${r.stage}`],
      ['partitions moved', total > 0 ? `${r.entriesDone} of ${total}` : 'no owner changes (a change of n)'],
      ['rate', r.entriesPerSecond > 0 ? `${fixed(r.entriesPerSecond, 2)} partitions/s` : 'measuring…'],
      ['ETA', r.etaSeconds === null ? '–' : `${r.etaSeconds} s`],
    ]),
    el('div', { class: 'muted' }, 'steps'),
    bar(stepFraction),
    el('div', { class: 'muted' }, 'partitions at their final owner'),
    bar(total > 0 ? r.entriesDone / total : stepFraction),
  )
}

function drawHints(hints) {
  const box = document.getElementById('hints')
  if (hints.length === 0) {
    box.replaceChildren(el('p', { class: 'muted' }, 'No hints held: every write reached its replicas.'))
    return
  }
  const most = Math.max(...hints.map((h) => h.keys))
  box.replaceChildren(
    ...hints.slice(0, 24).map((h) => {
      const row = el('div', { class: 'row', 'data-target': h.target })
      row.append(el('span', {}, h.target), bar(h.keys / most), el('span', {}, `${h.keys} keys`))
      row.title = `${h.keys} keys held for ${h.target} by ${h.holders} node(s)`
      return row
    }),
  )
}

function drawAntiEntropy(ae) {
  const box = document.getElementById('anti-entropy')
  if (!ae) {
    box.replaceChildren(el('p', { class: 'muted' }, 'No pass run by this dashboard: start it with --repair-every 60s to run and show one, or run kvorum repair.'))
    return
  }
  const when = `${new Date(ae.atMs).toLocaleTimeString()}`
  if (ae.error) {
    box.replaceChildren(facts([['last pass', `${when}: failed`], ['why', ae.error]]))
    return
  }
  const r = ae.report
  box.replaceChildren(
    facts([
      ['last pass', `${when}, ${fixed(r.durationMs / 1000)} s`],
      ['partitions compared', `${r.partitionsDone} of ${r.partitionsTotal} (${r.partitionsDiffering} differed, ${r.partitionsSkipped} skipped)`],
      ['keys repaired', `${r.keysRepaired} of ${r.keysCompared} compared`],
      ['bytes exchanged', bytes(r.bytesExchanged)],
    ]),
  )
}

/** Dynamo (SOSP 2007, section 6.3): versions seen by the requests of 24 hours of the shopping cart, percent. */
const DYNAMO_VERSIONS_PERCENT = [99.94, 0.00057, 0.00047, 0.00009, 0]

function percent(p) {
  if (p === 0) return '0%'
  return p >= 0.1 ? `${p.toFixed(2)}%` : `${p.toPrecision(2)}%`
}

function drawSiblings(h) {
  const box = document.getElementById('siblings')
  box.dataset.reads = String(h.reads)
  if (h.reads === 0) {
    box.replaceChildren(el('p', { class: 'muted' }, `No live key read yet (${h.partitionsSampled} partitions sampled).`))
    return
  }
  const table = el('table', { class: 'versions' })
  const head = el('tr')
  for (const t of ['versions', 'here', '', 'Dynamo']) head.append(el('th', {}, t))
  table.append(head)
  h.counts.forEach((count, i) => {
    const share = (count / h.reads) * 100
    const row = el('tr', { 'data-versions': String(i + 1) })
    const cell = el('td')
    cell.append(bar(share / 100))
    row.append(el('td', {}, i === h.counts.length - 1 ? `${i + 1}+` : String(i + 1)), el('td', {}, `${percent(share)} (${count})`), cell, el('td', {}, percent(DYNAMO_VERSIONS_PERCENT[i] ?? 0)))
    table.append(row)
  })
  box.replaceChildren(table, el('p', { class: 'muted' }, `${h.reads} reads of live keys, over ${h.partitionsSampled} partitions sampled one a poll.`))
}

/** Lines of `series` over the history as polylines in a 600×120 box, scaled to the largest value. */
function drawChart(id, history, series, unit) {
  const svg = document.getElementById(id)
  while (svg.children.length < series.length) svg.append(svgEl('polyline'))
  const most = Math.max(1e-9, ...history.flatMap((h) => series.map((s) => h[s.key])))
  const span = Math.max(1, (history.at(-1)?.atMs ?? 0) - (history[0]?.atMs ?? 0))
  const t0 = history[0]?.atMs ?? 0
  series.forEach((s, i) => {
    const points = history.map((h) => `${(((h.atMs - t0) / span) * 600).toFixed(1)},${(118 - (h[s.key] / most) * 112).toFixed(1)}`).join(' ')
    svg.children[i].setAttribute('points', points)
    svg.children[i].setAttribute('stroke', s.colour)
  })
  const last = history.at(-1)
  const minutes = fixed(span / 60000)
  setText(
    document.getElementById(`${id}-caption`),
    last ? `${series.map((s) => `${s.label} ${fixed(last[s.key], 2)} ${unit}`).join(', ')}; top of the chart ${fixed(most, 2)} ${unit}; last ${minutes} min` : '',
  )
}

function drawSummary(state) {
  const up = state.nodes.filter((n) => n.up).length
  document.getElementById('summary').textContent =
    `definition v${state.clusterVersion} · ${state.partitions} partitions · ${up}/${state.nodes.length} nodes up` +
    (state.sdk.quorumFailures > 0 ? ` · ${state.sdk.quorumFailures} of this dashboard's reads missed their quorum` : '')
  const updated = document.getElementById('updated')
  updated.className = state.pollError ? 'stale' : 'muted'
  updated.textContent = state.pollError
    ? `polls are failing (${state.pollError}); showing the state of ${new Date(state.atMs).toLocaleTimeString()}`
    : `updated ${new Date(state.atMs).toLocaleTimeString()} (the poll of the cluster took ${state.pollMs} ms)`
}

async function tick() {
  try {
    const state = await getJson('/api/state')
    if (state) {
      const drawStart = performance.now()
      pollMs = state.intervalMs
      if (!ring || ring.version !== state.clusterVersion) {
        const view = await getJson('/api/ring')
        if (view) {
          ring = view
          drawRing(ring)
        }
      }
      drawSummary(state)
      drawNodes(state.nodes)
      if (changed('rebalance', state.rebalance)) drawRebalance(state.rebalance)
      if (changed('hints', state.hints)) drawHints(state.hints)
      if (changed('anti-entropy', state.antiEntropy)) drawAntiEntropy(state.antiEntropy)
      if (changed('siblings', state.siblings)) drawSiblings(state.siblings)
      drawChart('throughput', state.history, [
        { key: 'opsPerSecond', label: 'requests', colour: '#3d7be0' },
        { key: 'errorsPerSecond', label: 'errors', colour: '#d0312d' },
      ], '/s')
      drawChart('latency', state.history, [
        { key: 'latencyMsP50', label: 'p50', colour: '#3d7be0' },
        { key: 'latencyMsP99', label: 'p99', colour: '#e08a3d' },
      ], 'ms')
      updates++
      drawMs += performance.now() - drawStart
      document.body.dataset.updates = String(updates)
      document.body.dataset.drawMs = drawMs.toFixed(1)
      document.body.dataset.updatedAt = String(state.atMs)
    }
  } catch (e) {
    const updated = document.getElementById('updated')
    updated.className = 'stale'
    updated.textContent = `no answer from the dashboard server (${e.message}); showing the last state`
  } finally {
    setTimeout(tick, pollMs)
  }
}

tick()
