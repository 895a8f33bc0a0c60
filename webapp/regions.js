// Region mode of the Label view. Runs once, as the js_on_load of the hidden "cm-regions-js" HTML
// component. The page keeps the clicks of the image on screen in window.cmRegion and sends all of
// them (a few numbers) with every request through the hidden #cm-ract-btn; the server answers
// with the card (#cm-rcard), which echoes the request's nonce, so an answer to an older request
// never overwrites newer clicks.
if (!window.cmRegionsInstalled) {
  window.cmRegionsInstalled = true;

  const $ = (selector) => document.querySelector(selector);
  const card = () => $("#cm-rcard");
  const shown = () => { const c = card(); return !!c && c.offsetParent !== null; };
  const fresh = (image) => ({ image, points: [], box: null, choice: null, proposal: null, selected: null });
  window.cmRegion = fresh(null);
  let nonce = 0;

  const send = (action, extra) => {
    nonce += 1;
    const state = window.cmRegion;
    window.cmRegionPayload = JSON.stringify({ ...state, ...(extra || {}), action, nonce });
    const button = $(action === "labels" ? "#cm-rlabels-btn" : "#cm-ract-btn");
    if (button) button.click();
  };
  window.cmRegionSend = send;

  // Image pixels of a mouse event on the stage (the image keeps its aspect ratio).
  const imagePoint = (e) => {
    const img = $("#cm-rcard .cm-rimg");
    const c = card();
    if (!img || !c) return null;
    const r = img.getBoundingClientRect();
    const w = Number(c.dataset.width), h = Number(c.dataset.height);
    const x = ((e.clientX - r.left) / r.width) * w, y = ((e.clientY - r.top) / r.height) * h;
    return { x: Math.max(0, Math.min(w, x)), y: Math.max(0, Math.min(h, y)), r, w, h };
  };

  const dot = (p, positive) => {
    const stage = $("#cm-rcard .cm-rstage");
    if (!stage) return;
    const span = document.createElement("span");
    span.className = "cm-dot " + (positive ? "cm-pos" : "cm-neg");
    span.style.left = (100 * p.x / p.w) + "%";
    span.style.top = (100 * p.y / p.h) + "%";
    stage.appendChild(span);
  };

  let drag = null;
  document.addEventListener("mousedown", (e) => {
    if (!e.target.closest || !e.target.closest("#cm-rcard .cm-rstage") || e.button !== 0) return;
    e.preventDefault();
    drag = { start: imagePoint(e), negative: e.shiftKey };
  });
  document.addEventListener("mousemove", (e) => {
    if (!drag || !drag.start) return;
    const p = imagePoint(e), box = $("#cm-rcard .cm-rdrag");
    if (!p || !box) return;
    const x0 = Math.min(p.x, drag.start.x), y0 = Math.min(p.y, drag.start.y);
    box.hidden = false;
    box.style.left = (100 * x0 / p.w) + "%"; box.style.top = (100 * y0 / p.h) + "%";
    box.style.width = (100 * Math.abs(p.x - drag.start.x) / p.w) + "%";
    box.style.height = (100 * Math.abs(p.y - drag.start.y) / p.h) + "%";
  });
  document.addEventListener("mouseup", (e) => {
    if (!drag) return;
    const start = drag.start, negative = drag.negative, end = imagePoint(e);
    drag = null;
    if (!start || !end) return;
    const moved = Math.hypot((end.x - start.x) * end.r.width / end.w, (end.y - start.y) * end.r.height / end.h);
    const state = window.cmRegion;
    state.proposal = null;
    if (moved > 6) {
      state.box = [Math.min(start.x, end.x), Math.min(start.y, end.y), Math.max(start.x, end.x), Math.max(start.y, end.y)];
    } else {
      state.points.push([start.x, start.y, negative ? 0 : 1]);
      dot(start, !negative);
    }
    state.choice = null;
    send("click");
  });
  document.addEventListener("contextmenu", (e) => {
    if (!e.target.closest || !e.target.closest("#cm-rcard .cm-rstage")) return;
    e.preventDefault();
    const p = imagePoint(e);
    if (!p) return;
    const state = window.cmRegion;
    state.proposal = null; state.choice = null;
    state.points.push([p.x, p.y, 0]);
    dot(p, false);
    send("click");
  });

  // The server's card is the truth for the answer to the latest request.
  const sync = () => {
    const c = card();
    if (!c) return;
    const image = c.dataset.imageId ? Number(c.dataset.imageId) : null;
    const state = window.cmRegion;
    if (image !== state.image) { window.cmRegion = fresh(image); return; }
    if (Number(c.dataset.nonce || -1) !== nonce) return;
    const hasCandidates = !!c.querySelector(".cm-cand");
    if (!hasCandidates && !c.querySelector(".cm-dot")) { state.points = []; state.box = null; }
    state.choice = c.dataset.choice === "" ? null : Number(c.dataset.choice);
    state.proposal = c.dataset.proposal === "" ? null : Number(c.dataset.proposal);
    if (hasCandidates && !state.proposal && c.dataset.labels === "pending") { c.dataset.labels = "asked"; send("labels"); }
  };
  new MutationObserver(() => sync()).observe(document.body, { childList: true, subtree: true });

  const cycleMask = () => {
    const masks = Array.from(document.querySelectorAll("#cm-rcard .cm-cand:not(.cm-prop)"));
    if (masks.length < 2) return;
    const at = masks.findIndex((m) => m.classList.contains("cm-on"));
    const next = masks[(at + 1) % masks.length];
    masks.forEach((m) => m.classList.toggle("cm-on", m === next));
    document.querySelectorAll("#cm-rcard .cm-mchoice").forEach((b) => b.classList.toggle("cm-on", b.dataset.k === next.dataset.k));
    window.cmRegion.choice = Number(next.dataset.k);
    send("labels");
  };

  const select = (id) => {
    window.cmRegion.selected = id;
    document.querySelectorAll("#cm-rside .cm-inst").forEach((li) => li.classList.toggle("cm-sel", Number(li.dataset.inst) === id));
    const stage = $("#cm-rcard .cm-rstage"), c = card();
    if (!stage || !c) return;
    let frame = stage.querySelector(".cm-rsel");
    const li = document.querySelector(`#cm-rside .cm-inst[data-inst="${id}"]`);
    if (!li) { if (frame) frame.remove(); return; }
    if (!frame) { frame = document.createElement("span"); frame.className = "cm-rsel"; stage.appendChild(frame); }
    const [x, y, w, h] = li.dataset.bbox.split(",").map(Number), W = Number(c.dataset.width), H = Number(c.dataset.height);
    Object.assign(frame.style, { left: (100 * x / W) + "%", top: (100 * y / H) + "%", width: (100 * w / W) + "%", height: (100 * h / H) + "%" });
  };

  const hasCandidate = () => !!$("#cm-rcard .cm-cand");
  const pickClass = (label) => {
    if (hasCandidate()) send("accept", { label });
    else if (window.cmRegion.selected) send("relabel", { label });
  };

  document.addEventListener("click", (e) => {
    if (!e.target.closest) return;
    const cls = e.target.closest("#cm-rclasses .cm-rclass");
    if (cls) { pickClass(cls.dataset.label); return; }
    const pick = e.target.closest("#cm-rside .cm-inst-pick");
    if (pick) { select(Number(pick.dataset.inst)); return; }
    const del = e.target.closest("#cm-rside .cm-inst-del");
    if (del) { window.cmRegion.selected = Number(del.dataset.inst); send("delete"); return; }
    const choice = e.target.closest("#cm-rcard .cm-mchoice");
    if (choice) {
      document.querySelectorAll("#cm-rcard .cm-cand").forEach((m) => m.classList.toggle("cm-on", m.dataset.k === choice.dataset.k));
      document.querySelectorAll("#cm-rcard .cm-mchoice").forEach((b) => b.classList.toggle("cm-on", b === choice));
      window.cmRegion.choice = Number(choice.dataset.k);
      send("labels");
    }
  });

  document.addEventListener("keydown", (e) => {
    if (!shown() || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    const key = e.key, state = window.cmRegion;
    const classes = Array.from(document.querySelectorAll("#cm-rclasses .cm-rclass"));
    const handled = () => { e.preventDefault(); e.stopImmediatePropagation(); };
    if (/^[1-9]$/.test(key)) {
      const button = classes[Number(key) - 1];
      if (button) { handled(); pickClass(button.dataset.label); }
    } else if (key === "Enter") {
      handled(); if (hasCandidate()) send("accept");
    } else if (key === "m" || key === "M" || key === "Tab") {
      handled(); cycleMask();
    } else if (key === "Escape") {
      handled(); state.points = []; state.box = null; state.proposal = null; select(null); send("open", { image: state.image });
    } else if (key === "z" || key === "Z" || key === "Backspace") {
      handled();
      if (state.box && !state.points.length) { state.box = null; send(state.points.length ? "click" : "open", { image: state.image }); }
      else if (state.points.length) { state.points.pop(); send(state.points.length || state.box ? "click" : "open", { image: state.image }); }
      else send("undo");
    } else if (key === "Delete") {
      handled(); if (state.selected) send("delete");
    } else if (key === "x" || key === "X") {
      handled(); if (state.proposal) send("reject");
    } else if (key === "p" || key === "P") {
      handled(); const b = $("#cm-rpropose"); if (b) b.click();
    } else if (key === "v" || key === "V") {
      handled(); send("proposal");
    } else if (key === "n" || key === "N") {
      handled(); send("next");
    } else if (key === "b" || key === "B") {
      handled(); send("prev");
    } else if (key === "r" || key === "R") {
      handled(); const b = $("#cm-mode-classify"); if (b) b.click();
    } else if (key === "?") {
      handled(); const help = $("#cm-rhelp"); if (help) help.hidden = !help.hidden;
    }
  }, true);
}
