// Keyboard first: a key clicks the button that names it in data-hotkey (labeling and review).
// One request at a time: keys pressed while a request is in flight are dropped, so a double
// press never sends two labels (the server is idempotent on the view key as well).
// A multi-label project's buttons are toggles (data-toggle): a click or their key flips
// aria-pressed and the hidden checkbox after the button, which the form sends as `labels`; Enter
// clicks the submit button. A 4xx or 5xx answer shows in #label-error (htmx swaps none).
// Nothing is labeled unseen: a held key's repeats are ignored, and so is a key pressed sooner than
// #work's data-min-view-ms after its example appeared (a double press labeled the next example
// 20 ms after it was shown); Backspace (undo) is exempt from the delay, not from the repeat guard.
(function () {
  let busy = false;
  let shownAt = performance.now();
  let workShownAt = performance.now();
  let lastActivity = Date.now();

  document.addEventListener("htmx:beforeRequest", () => { busy = true; });
  document.addEventListener("htmx:afterRequest", () => { busy = false; });
  document.addEventListener("htmx:afterSwap", (evt) => {
    shownAt = performance.now();
    if (evt.detail.target && evt.detail.target.id === "work") workShownAt = shownAt;
    const error = document.getElementById("label-error");
    if (error && evt.detail.target && evt.detail.target.id === "work") error.replaceChildren();
  });
  document.addEventListener("htmx:responseError", (evt) => {
    const error = document.getElementById("label-error");
    if (!error) return;
    // Our own server's error fragment (escaped by Jinja), else the bare status.
    const xhr = evt.detail.xhr;
    if ((xhr.getResponseHeader("Content-Type") || "").startsWith("text/html") && xhr.responseText.length < 4000) {
      error.innerHTML = xhr.responseText;
    } else {
      error.textContent = "The server answered " + xhr.status + ".";
    }
  });

  function showChosen(form) {
    const line = form.querySelector("[data-testid=chosen]");
    if (!line) return;
    const names = Array.from(form.querySelectorAll("[data-toggle][aria-pressed=true]"), (b) => b.dataset.name);
    line.textContent = names.length ? "Chosen: " + names.join(", ") : "None of these";
  }

  document.addEventListener("click", (evt) => {
    const toggle = evt.target.closest && evt.target.closest("[data-toggle]");
    if (!toggle) return;
    const box = toggle.nextElementSibling;
    const on = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    if (box && box.type === "checkbox") box.checked = on;
    showChosen(toggle.form || toggle.closest("form"));
  });
  document.addEventListener("htmx:configRequest", (evt) => {
    if (evt.detail.path.endsWith("/label/submit")) {
      evt.detail.parameters["duration_ms"] = Math.round(performance.now() - shownAt);
    }
  });

  function click(selector) {
    const work = document.getElementById("work");
    const el = work && work.querySelector(selector);
    if (!el) return false;
    // A fast key can land before htmx has wired up a just-swapped fragment: wire it now
    // (htmx.process is idempotent), so the click always goes through htmx.
    if (window.htmx) htmx.process(work);
    el.click();
    return true;
  }

  function tooSoon() {
    const work = document.getElementById("work");
    const least = work ? Number(work.dataset.minViewMs || 0) : 0;
    return performance.now() - workShownAt < least;
  }

  // Never let the labeling forms submit natively (a full page load, and a GET with the label).
  document.addEventListener("submit", (evt) => {
    if (evt.target.closest("#work") && !evt.defaultPrevented) evt.preventDefault();
  });

  document.addEventListener("keydown", (evt) => {
    lastActivity = Date.now();
    if (evt.ctrlKey || evt.metaKey || evt.altKey) return;
    const tag = (evt.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    if (busy) { evt.preventDefault(); return; }
    // Buttons name their keys in data-hotkey, separated by spaces: a letter or digit, or Space,
    // Enter, Backspace (a pre-selected suggestion has its label's key and Enter).
    const key = evt.key === " " ? "Space" : (evt.key.length === 1 ? evt.key.toLowerCase() : evt.key);
    // A held key never repeats an action (held Backspace would walk back through every label);
    // Backspace is exempt from the delay only: a mistake is often seen as the next example shows.
    if (evt.repeat || (key !== "Backspace" && tooSoon())) {
      if (document.querySelector('#work [data-hotkey~="' + CSS.escape(key) + '"]')) evt.preventDefault();
      return;
    }
    const handled = click('[data-hotkey~="' + CSS.escape(key) + '"]');
    if (handled) evt.preventDefault();
  });
  document.addEventListener("mousemove", () => { lastActivity = Date.now(); });

  // "All" in a list's header (the review page's open flags) selects every row of its form.
  document.addEventListener("change", (evt) => {
    if (!evt.target.matches("[data-select-all]")) return;
    const form = evt.target.closest("form");
    form.querySelectorAll('input[type=checkbox][name]').forEach((box) => { box.checked = evt.target.checked; });
  });

  // Renew the lease every minute while the annotator is active.
  setInterval(() => {
    const work = document.getElementById("work");
    const form = work && work.querySelector("form.labeling");
    if (!form || Date.now() - lastActivity > 120000 || !window.htmx) return;
    htmx.ajax("POST", work.dataset.renewUrl, {
      source: form, target: "#lease", swap: "innerHTML",
      values: { example_id: form.elements.example_id.value, lease_id: form.elements.lease_id.value },
    });
  }, 60000);
})();
