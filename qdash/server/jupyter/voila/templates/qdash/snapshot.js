// qdash's first paint (qdash/server/snapshot.py): the page's head carries its kernel's snapshot
// (Bokeh's embed format of the market view, the status line and the statistics table); this
// script, deferred right after BokehJS, draws it over Voila's loading page at once, with a
// "connecting…" badge, and removes it when the live market view has rendered and painted, so
// the live figures take the snapshot's place (the header above them has the same fixed height,
// and the snapshot sits where Voila puts the cell's output). A page whose live view never
// comes keeps the snapshot, says so, and offers a reload. The figures below the first screen
// (the snapshot's market.below, a second root of the same document) are drawn right after it,
// before Voila's front end starts. State for tests and the benchmark:
// window.qdashSnapshot = {state: "none"|"painting"|"painted"|"drawn"|"live"|"stale"|"failed"
// (painted: the first screen, candles down to the z-score; drawn: the whole snapshot),
// script_ms, embedded_ms, painted_ms, drawn_ms, live_ms (performance.now(): from navigation
// start), kernel_ms (kernel clock of the snapshot), live_root (the live market view's root model
// id; the snapshot's is "qs-" + it), roots (the snapshot's root model ids)}.
const CONNECT_TIMEOUT_MS = window.qdashConnectTimeoutMs ?? 45000;
const state = (window.qdashSnapshot = { state: "none" });
const data = document.getElementById("qdash-snapshot-data");
const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
const clock = (ms) => new Date(ms).toLocaleTimeString();

function overlay(snap) {
  const box = document.createElement("div");
  box.id = "qdash-snapshot";
  box.innerHTML = `
    <div class="qdash-snap-head" style="height:${snap.head_px}px">
      <h3></h3><div class="qdash-snap-summary"></div><div class="qdash-snap-status"></div>
    </div>
    ${Object.values(snap.market.render_items[0].roots).map((id) => `<div id="${id}"></div>`)
      .join("")}
    <div class="qdash-snap-stats"></div>
    <div class="qdash-snap-badge" role="status">connecting…</div>`;
  box.querySelector("h3").textContent = snap.title;
  box.querySelector(".qdash-snap-summary").textContent = snap.summary;
  box.querySelector(".qdash-snap-status").innerHTML = snap.status;  // kernel-made HTML, escaped
  box.querySelector(".qdash-snap-stats").innerHTML = snap.stats;
  document.body.appendChild(box);
  return box;
}

function finished(views) {
  const all = [];
  const walk = (v) => { all.push(v); for (const c of v.child_views ?? []) walk(c); };
  for (const v of views) walk(v);
  return all.every((v) => typeof v.has_finished !== "function" || v.has_finished());
}

function scroller(el) {  // the live page's scrolling ancestor (Voila's shell panel)
  for (let e = el; e; e = e.parentElement)
    if (e.scrollHeight > e.clientHeight && getComputedStyle(e).overflowY !== "visible") return e;
  return null;
}

async function onScreen(views) {  // resolves once ``views`` are painted and on screen
  let inFrame = false;
  while (!finished(views)) {
    await frame();
    inFrame = true;
  }
  if (!inFrame) await frame();
  // painted into their canvases before this frame's rendering: the next task runs after it
  await new Promise((resolve) => setTimeout(resolve, 0));
}

async function paint(snap) {
  state.state = "painting";
  state.kernel_ms = snap.kernel_ms;
  state.live_root = snap.live_root;
  state.roots = snap.market.render_items[0].root_ids;
  state.script_ms = performance.now();
  const box = overlay(snap);
  const known = Bokeh.documents.length;
  const managers = await Bokeh.embed.embed_items(snap.market.docs_json, snap.market.render_items);
  Bokeh.documents.splice(known);  // the page's Bokeh.documents stay the live ones
  state.embedded_ms = performance.now();
  const views = managers.flatMap((m) => m.roots);
  await onScreen(views);
  state.state = "painted";
  state.painted_ms = performance.now();
  if (snap.market.below) {  // a second root of the document: Bokeh renders it where it belongs
    try {
      views[0].model.document.apply_json_patch(
        { events: [{ kind: "RootAdded", model: snap.market.below }] });
      const until = performance.now() + 3000;  // Bokeh renders an added root asynchronously
      let below;
      while (!(below = Bokeh.index[snap.market.below.id])) {
        if (performance.now() > until) throw new Error("no view of the added root");
        await frame();
      }
      await onScreen([below]);
    } catch (e) {  // the first screen stays
      console.warn("qdash: the snapshot's figures below the first screen could not be drawn", e);
    }
  }
  state.state = "drawn";
  state.drawn_ms = performance.now();
  window.qdashOpenGate?.();  // Voila's front end may start now
  const started = performance.now();
  for (;;) {
    await frame();
    const live = Bokeh.index[snap.live_root];
    const rect = live?.el?.getBoundingClientRect();
    if (live && rect.width > 0 && finished([live])) {
      await frame();  // its canvases painted: no empty frame
      const target = scroller(live.el);
      if (target) target.scrollTop = box.scrollTop;
      box.remove();
      for (const m of managers) m.clear();
      state.state = "live";
      state.live_ms = performance.now();
      return;
    }
    if (state.state === "drawn" && performance.now() - started > CONNECT_TIMEOUT_MS) {
      state.state = "stale";
      const badge = box.querySelector(".qdash-snap-badge");
      badge.classList.add("qdash-snap-stale");
      badge.textContent = `not live: the dashboard's kernel did not connect. This is a snapshot ` +
        `of ${clock(snap.kernel_ms)}. `;
      const reload = document.createElement("a");
      reload.href = window.location.href;
      reload.textContent = "reload";
      badge.appendChild(reload);
    }
  }
}

if (data && window.Bokeh?.embed) {
  paint(JSON.parse(data.textContent)).catch((e) => {
    window.qdashOpenGate?.();
    state.state = "failed";
    document.getElementById("qdash-snapshot")?.remove();
    console.warn("qdash: the snapshot could not be drawn; the live page follows", e);
  });
} else {
  window.qdashOpenGate?.();
}
