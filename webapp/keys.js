// Keyboard and click handling of the clipmark web app. Runs once, as the js_on_load of the hidden
// "cm-keys" HTML component. Decisions go through hidden Gradio buttons: a handler stores what was
// chosen in window.cmPick / window.cmChoice and clicks the button; the button's `js=` hands that
// value to the server function, so every action is an ordinary Gradio event.
if (!window.cmKeysInstalled) {
  window.cmKeysInstalled = true;

  const $ = (selector) => document.querySelector(selector);
  const visible = (el) => !!el && el.offsetParent !== null;
  const labelViewShown = () => visible($("#cm-card"));
  const click = (selector) => { const el = $(selector); if (el && !el.disabled) el.click(); };

  const classButtons = () =>
    Array.from(document.querySelectorAll("#cm-classes .cm-class")).filter((b) => !b.hidden);

  const numberClasses = () => {
    document.querySelectorAll("#cm-classes .cm-class").forEach((b) => { b.querySelector("kbd").textContent = ""; });
    classButtons().slice(0, 9).forEach((b, i) => { b.querySelector("kbd").textContent = String(i + 1); });
  };

  const applyFilter = () => {
    const box = $("#cm-filter");
    const text = box ? box.value.trim().toLowerCase() : "";
    document.querySelectorAll("#cm-classes .cm-class").forEach((b) => {
      b.hidden = text !== "" && !b.dataset.label.toLowerCase().includes(text);
    });
    numberClasses();
  };

  const pick = (label) => {
    window.cmPick = label;
    click("#cm-pick-btn");
  };

  const toggleHelp = () => {
    const help = $("#cm-help");
    if (help) help.hidden = !help.hidden;
  };

  window.cmApplyFilter = applyFilter;

  document.addEventListener("input", (e) => {
    if (e.target && e.target.id === "cm-filter") applyFilter();
  });

  document.addEventListener("click", (e) => {
    const cls = e.target.closest ? e.target.closest("#cm-classes .cm-class") : null;
    if (cls) { pick(cls.dataset.label); return; }
    const tile = e.target.closest ? e.target.closest(".cm-tiles .cm-tile") : null;
    if (tile) { tile.classList.toggle("cm-marked"); tile.setAttribute("aria-pressed", tile.classList.contains("cm-marked")); return; }
    const fix = e.target.closest ? e.target.closest("[data-cm-choice]") : null;
    if (fix) { window.cmChoice = fix.dataset.cmChoice; click("#cm-review-btn"); }
  });

  document.addEventListener("keydown", (e) => {
    if (!labelViewShown() || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (target && target.id === "cm-filter") {
      // Enter picks the first match; then (as with Esc) the filter clears and the keys work again.
      if (e.key === "Enter") { e.preventDefault(); const first = classButtons()[0]; if (first) pick(first.dataset.label); }
      if (e.key === "Enter" || e.key === "Escape") { target.value = ""; applyFilter(); target.blur(); }
      return;
    }
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const key = e.key;
    if (/^[1-9]$/.test(key)) {
      const button = classButtons()[Number(key) - 1];
      if (button) { e.preventDefault(); pick(button.dataset.label); }
    } else if (key === "Enter") {
      e.preventDefault(); click("#cm-accept");
    } else if (key === "s" || key === "S") {
      e.preventDefault(); click("#cm-skip");
    } else if (key === "z" || key === "Z" || key === "Backspace") {
      e.preventDefault(); click("#cm-undo");
    } else if (key === "r" || key === "R") {
      e.preventDefault(); click("#cm-mode-regions");
    } else if (key === "?") {
      e.preventDefault(); toggleHelp();
    } else if (key === "/") {
      e.preventDefault(); const box = $("#cm-filter"); if (box) box.focus();
    } else if (key === "Escape") {
      const help = $("#cm-help"); if (help) help.hidden = true;
    }
  });
}
