// The frame inspector's browser side (anywidget ESM; see workbench/inspector.py for the design).
// One frame index (`cur`) drives the slider, the label, the face/lip/MFCC canvases and the cursor:
// draw() updates all of them together, only once the frame's images are decoded.
// Play computes the frame from the clock; frames not decoded in time are dropped, never queued.

const SPEEDS = [0.25, 0.5, 1, 2, 4];
const KEEP = 360; // decoded frames kept (ImageBitmaps), least recently used dropped
const AHEAD = 10; // frames decoded ahead while playing
const SYNC_MS = 250; // how often the kernel hears the frame while playing

function bytesOf(dv) {
  return dv instanceof DataView ? new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength)
    : dv instanceof ArrayBuffer ? new Uint8Array(dv) : new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
}
function typed(dv, T) { // copy: buffers need not be aligned for T
  const b = bytesOf(dv);
  return new T(b.slice().buffer);
}
function el(tag, cls, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}

function render({ model, el: host }) {
  const root = el("div", "wbi", host);
  root.tabIndex = 0;
  root.dataset.frame = "-1";
  root.dataset.drawn = "0";
  root.dataset.ready = "0";
  const head = el("div", "wbi-title", root);
  const bar = el("div", "wbi-bar", root);
  const condSel = el("select", "wbi-cond", bar);
  condSel.title = "condition";
  const videoSel = el("select", "wbi-video", bar);
  videoSel.title = "video";
  const playBtn = el("button", "wbi-play", bar);
  playBtn.type = "button";
  playBtn.title = "play / pause (space)";
  const speedSel = el("select", "wbi-speed", bar);
  speedSel.title = "playback speed";
  for (const s of SPEEDS) {
    const o = el("option", "", speedSel);
    o.value = String(s);
    o.textContent = `${s}×`;
  }
  const slider = el("input", "wbi-slider", bar);
  slider.type = "range";
  slider.min = "0";
  slider.step = "1";
  slider.max = "0";
  slider.value = "0";
  const label = el("div", "wbi-label", root);
  const live = el("div", "wbi-live", root);
  live.hidden = true;
  const panels = el("div", "wbi-panels", live);
  const mk = (name, w, h) => {
    const f = el("figure", "wbi-panel", panels);
    const c = el("canvas", `wbi-${name}`, f);
    c.width = w;
    c.height = h;
    el("figcaption", "", f).textContent = name;
    return c;
  };
  const faceCv = mk("face", 160, 160);
  const lipCv = mk("lips", 160, 160);
  const mfccCv = mk("mfcc", 320, 160);
  const mfccCap = mfccCv.nextSibling;
  const curveBox = el("div", "wbi-curve", live);
  const curveImg = el("img", "wbi-curve-img", curveBox);
  curveImg.alt = "P(Fake) over time";
  const cursor = el("div", "wbi-cursor", curveBox);
  const dot = el("div", "wbi-dot", curveBox);
  const stillBox = el("div", "wbi-still", root);
  const note = el("div", "wbi-note", stillBox);
  const stillImg = el("img", "wbi-still-img", stillBox);
  stillImg.alt = "inspector still: frames and the P(Fake) curve";

  const urls = [];
  const blobUrl = (dv, type) => {
    const u = URL.createObjectURL(new Blob([bytesOf(dv)], { type }));
    urls.push(u);
    return u;
  };

  // ---------------------------------------------------------------- state
  let clip = null; // header of the current selection
  let chunks = new Map(); // chunk index -> {start, faceOff, lipOff, face, lip}
  let asked = new Set(); // chunk indices requested and not yet here
  let bitmaps = new Map(); // frame -> {face, lip} (insertion order = recency)
  let decoding = new Set();
  let mfccImg = null;
  let cur = -1, want = 0, drawn = 0;
  let playing = false, anchorT = 0, anchorF = 0, raf = 0, lastSync = 0, waitTimer = 0;

  function reset() {
    pause(false);
    for (const u of urls.splice(0)) URL.revokeObjectURL(u);
    for (const b of bitmaps.values()) { b.face.close(); b.lip.close(); }
    clip = null;
    chunks = new Map();
    asked = new Set();
    bitmaps = new Map();
    decoding = new Set();
    mfccImg = null;
    cur = -1;
    root.dataset.ready = "0";
    live.hidden = true;
    stillBox.hidden = false;
  }

  function fillChoices() {
    const choices = model.get("choices") || [];
    const conds = [...new Set(choices.map((c) => c[0]))];
    const c = model.get("condition");
    condSel.replaceChildren(...conds.map((x) => { const o = document.createElement("option"); o.value = x; o.textContent = x || "(condition)"; return o; }));
    condSel.value = c;
    const vids = choices.filter((x) => x[0] === c).map((x) => x[1]);
    videoSel.replaceChildren(...vids.map((x) => { const o = document.createElement("option"); o.value = x; o.textContent = x; return o; }));
    videoSel.value = model.get("video");
    condSel.disabled = conds.length < 2;
    videoSel.disabled = vids.length < 2;
  }

  function showStill() {
    const s = model.get("still");
    if (s && s.byteLength) stillImg.src = blobUrl(s, "image/png");
    head.textContent = model.get("title");
  }

  function ask() { // request the header, then the chunk under the playhead and those after it
    if (!model.get("key")) return;
    if (!clip) {
      if (!asked.has("clip")) { asked.add("clip"); model.send({ type: "clip", key: model.get("key") }); }
      return;
    }
    const n = Math.ceil(clip.n / clip.chunk);
    const first = Math.floor(Math.max(want, 0) / clip.chunk);
    for (let j = 0; j < n && asked.size < 2; j++) {
      const k = (first + j) % n;
      if (!chunks.has(k) && !asked.has(k)) {
        asked.add(k);
        model.send({ type: "frames", key: clip.key, k });
      }
    }
  }

  function onMessage(msg, buffers) {
    if (!msg || msg.key !== model.get("key")) return;
    if (msg.type === "clip") {
      asked.delete("clip");
      clip = msg;
      clip.times = typed(buffers[0], Float64Array);
      clip.p = typed(buffers[1], Float32Array);
      clip.face = bytesOf(buffers[2]).slice();
      clip.truth = bytesOf(buffers[3]).slice();
      curveImg.src = blobUrl(buffers[5], "image/png");
      const img = new Image();
      img.onload = () => { mfccImg = img; if (cur >= 0) draw(cur, bitmaps.get(cur)); };
      img.src = blobUrl(buffers[4], "image/png");
      const [fh, fw] = clip.face_shape, [lh, lw] = clip.lip_shape;
      faceCv.height = Math.round(faceCv.width * fh / Math.max(fw, 1));
      lipCv.height = Math.round(lipCv.width * lh / Math.max(lw, 1));
      mfccCap.textContent = `MFCC ±${(clip.mfcc_window_s / 2).toFixed(2)} s`;
      slider.max = String(clip.n - 1);
      head.textContent = clip.title;
      want = Math.min(Math.max(model.get("frame"), 0), clip.n - 1);
      ask();
    } else if (msg.type === "frames" && clip) {
      asked.delete(msg.k);
      chunks.set(msg.k, { start: msg.start, faceOff: msg.face_offsets, lipOff: msg.lip_offsets,
                          face: bytesOf(buffers[0]).slice(), lip: bytesOf(buffers[1]).slice() });
      if (cur < 0 || want !== cur) show(want);
      ask();
    }
  }

  function frameBitmaps(i) { // decoded images of frame i, or null (decoding starts; draw follows if still wanted)
    const b = bitmaps.get(i);
    if (b) { bitmaps.delete(i); bitmaps.set(i, b); return b; }
    if (decoding.has(i)) return null;
    const c = chunks.get(Math.floor(i / clip.chunk));
    if (!c) { ask(); return null; }
    const j = i - c.start;
    const blob = (bytes, off) => new Blob([bytes.subarray(off[j], off[j + 1])], { type: "image/jpeg" });
    decoding.add(i);
    const gen = clip;
    Promise.all([createImageBitmap(blob(c.face, c.faceOff)), createImageBitmap(blob(c.lip, c.lipOff))]).then(([face, lip]) => {
      decoding.delete(i);
      if (gen !== clip) { face.close(); lip.close(); return; }
      bitmaps.set(i, { face, lip });
      while (bitmaps.size > KEEP) {
        const [old, ob] = bitmaps.entries().next().value;
        bitmaps.delete(old);
        ob.face.close();
        ob.lip.close();
      }
      if (i === want && i !== cur) draw(i, bitmaps.get(i));
    }, () => decoding.delete(i));
    return null;
  }

  function show(i) {
    if (!clip) return;
    want = Math.min(Math.max(Math.round(i), 0), clip.n - 1);
    const b = frameBitmaps(want);
    if (b) draw(want, b);
  }

  function drawMfcc(t) {
    const ctx = mfccCv.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, mfccCv.width, mfccCv.height);
    if (mfccImg) {
      const h = clip.half, sw = 2 * h + 1, sx = Math.round(t * clip.audio_rate) - h;
      const x0 = Math.max(0, sx), x1 = Math.min(mfccImg.naturalWidth, sx + sw);
      if (x1 > x0) {
        ctx.drawImage(mfccImg, x0, 0, x1 - x0, mfccImg.naturalHeight,
                      (x0 - sx) / sw * mfccCv.width, 0, (x1 - x0) / sw * mfccCv.width, mfccCv.height);
      }
    }
    ctx.fillStyle = "#00e5ff";
    ctx.fillRect(Math.floor(mfccCv.width / 2), 0, 1, mfccCv.height);
  }

  function draw(i, b) { // everything shows frame i, together
    if (!b) return;
    const t = clip.times[i], p = clip.p[i];
    faceCv.getContext("2d").drawImage(b.face, 0, 0, faceCv.width, faceCv.height);
    lipCv.getContext("2d").drawImage(b.lip, 0, 0, lipCv.width, lipCv.height);
    drawMfcc(t);
    const [bx0, by0, bx1, by1] = clip.curve_box, [lo, hi] = clip.xlim;
    const x = bx0 + (t - lo) / (hi - lo) * (bx1 - bx0);
    cursor.style.left = `${(100 * x).toFixed(3)}%`;
    cursor.style.top = `${(100 * by0).toFixed(3)}%`;
    cursor.style.height = `${(100 * (by1 - by0)).toFixed(3)}%`;
    dot.style.left = cursor.style.left;
    dot.style.top = `${(100 * (by0 + (1 - p) * (by1 - by0))).toFixed(3)}%`;
    slider.value = String(i);
    const verdict = p > clip.threshold ? "FAKE" : "REAL";
    let text = `t = ${t.toFixed(2)} s · frame ${i}/${clip.n - 1} · P(Fake) = ${p.toFixed(3)} (${verdict}) · ${clip.face[i] ? "face found" : "no face"}`;
    if (clip.has_truth) text += ` · truth: ${clip.truth[i] ? "manipulated" : "real"} frame`;
    label.textContent = text;
    label.classList.toggle("fake", p > clip.threshold);
    cur = i;
    drawn += 1;
    root.dataset.frame = String(i);
    root.dataset.drawn = String(drawn);
    if (root.dataset.ready !== "1") {
      root.dataset.ready = "1";
      live.hidden = false;
      stillBox.hidden = true;
    }
    const now = performance.now();
    if (!playing || now - lastSync > SYNC_MS) sync(now);
  }

  function sync(now) {
    lastSync = now;
    if (model.get("frame") !== cur) {
      model.set("frame", cur);
      model.save_changes();
    }
  }

  function tick(now) {
    if (!playing || !clip) return;
    const speed = Number(speedSel.value);
    const target = Math.min(clip.n - 1, anchorF + Math.floor((now - anchorT) / 1000 * clip.fps * speed));
    if (target !== want || cur !== want) show(target);
    for (let j = 1; j <= AHEAD && target + j < clip.n && decoding.size < AHEAD; j++) frameBitmaps(target + j);
    if (target >= clip.n - 1 && cur === target) { pause(true); return; }
    raf = requestAnimationFrame(tick);
  }

  function play() {
    if (!clip || playing) return;
    if (cur >= clip.n - 1) show(0);
    playing = true;
    anchorT = performance.now();
    anchorF = Math.max(want, 0);
    playBtn.textContent = "❚❚";
    root.dataset.playing = "1";
    raf = requestAnimationFrame(tick);
  }

  function pause(report) {
    playing = false;
    cancelAnimationFrame(raf);
    playBtn.textContent = "▶";
    root.dataset.playing = "0";
    if (report && cur >= 0) sync(performance.now());
  }

  function seek(i) {
    if (playing) { anchorF = i; anchorT = performance.now(); }
    show(i);
  }

  // ---------------------------------------------------------------- events
  playBtn.addEventListener("click", () => (playing ? pause(true) : play()));
  speedSel.addEventListener("change", () => {
    if (playing) { anchorF = Math.max(cur, 0); anchorT = performance.now(); }
    model.set("speed", Number(speedSel.value));
    model.save_changes();
  });
  slider.addEventListener("input", () => seek(Number(slider.value)));
  curveBox.addEventListener("click", (e) => {
    if (!clip) return;
    const r = curveImg.getBoundingClientRect();
    const [bx0, , bx1] = clip.curve_box, [lo, hi] = clip.xlim;
    const t = lo + ((e.clientX - r.left) / r.width - bx0) / (bx1 - bx0) * (hi - lo);
    let best = 0;
    for (let j = 1; j < clip.n; j++) if (Math.abs(clip.times[j] - t) < Math.abs(clip.times[best] - t)) best = j;
    seek(best);
  });
  root.addEventListener("keydown", (e) => {
    if (!clip || e.target === condSel || e.target === videoSel) return;
    if (e.key === " ") { e.preventDefault(); playing ? pause(true) : play(); }
    else if (e.target !== slider && (e.key === "ArrowRight" || e.key === "ArrowLeft")) {
      e.preventDefault();
      seek(Math.max(cur, 0) + (e.key === "ArrowRight" ? 1 : -1));
    }
  });
  condSel.addEventListener("change", () => model.send({ type: "select", condition: condSel.value }));
  videoSel.addEventListener("change", () => model.send({ type: "select", condition: condSel.value, video: videoSel.value }));

  const onKey = () => { reset(); fillChoices(); showStill(); ask(); };
  const onFrame = () => {
    const v = model.get("frame");
    if (clip && v !== cur && v !== want) seek(v);
  };
  const onSpeed = () => { speedSel.value = String(model.get("speed")); };
  const onChoices = () => fillChoices();
  const handlers = [["msg:custom", onMessage], ["change:key", onKey], ["change:frame", onFrame],
                    ["change:speed", onSpeed], ["change:choices", onChoices], ["change:still", showStill]];
  for (const [event, fn] of handlers) model.on(event, fn);

  onSpeed();
  if (!SPEEDS.includes(model.get("speed"))) speedSel.value = "1";
  playBtn.textContent = "▶";
  fillChoices();
  showStill();
  note.textContent = "loading frames…";
  waitTimer = setTimeout(() => {
    note.textContent = "A still of the inspector: no kernel is attached. Run the notebook to step through the frames.";
  }, 3000);
  ask();

  return () => {
    pause(false);
    clearTimeout(waitTimer);
    for (const [event, fn] of handlers) model.off(event, fn);
    for (const b of bitmaps.values()) { b.face.close(); b.lip.close(); }
    for (const u of urls) URL.revokeObjectURL(u);
  };
}

export default { render };
