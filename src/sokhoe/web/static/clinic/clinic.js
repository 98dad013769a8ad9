// The clinic pages' small script: CSRF header for htmx, keyboard shortcuts, the typeaheads'
// choices (diagnoses, medicines), and the scanner box. Every page works without it; it only makes the
// work faster.
(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (token && token.content) { event.detail.headers["X-CSRF-Token"] = token.content; }
  });

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var dialog = document.getElementById("shortcuts");
    if (event.key === "?") {
      if (dialog && dialog.showModal) { dialog.showModal(); event.preventDefault(); }
      return;
    }
    var target = document.querySelector('[data-shortcut="' + event.key + '"]');
    if (!target) { return; }
    event.preventDefault();
    if (target.tagName === "A") { target.click(); return; }
    if (event.key === "s" && target.tagName === "BUTTON") { target.focus(); return; }
    target.focus();
    if (target.scrollIntoView) { target.scrollIntoView({block: "center"}); }
  });

  var help = document.getElementById("shortcuts-button");
  if (help) {
    help.addEventListener("click", function () {
      var dialog = document.getElementById("shortcuts");
      if (dialog && dialog.showModal) { dialog.showModal(); }
    });
  }

  // Typeahead choices (diagnoses, medicines): click or Enter on a choice puts its code in the
  // field the choice names.
  function choose(option) {
    var input = document.getElementById(option.getAttribute("data-target"));
    if (!input) { return; }
    input.value = option.getAttribute("data-code");
    var box = document.getElementById(input.id + "-choices");
    if (box) { box.innerHTML = ""; }
    input.setAttribute("aria-expanded", "false");
    input.dispatchEvent(new Event("change", {bubbles: true}));
    input.focus();
  }
  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest("[data-code]");
    if (option) { choose(option); }
  });
  document.addEventListener("keydown", function (event) {
    var t = event.target;
    if (t && t.getAttribute && t.getAttribute("data-code") && event.key === "Enter") {
      event.preventDefault(); choose(t); return;
    }
    if (t && t.getAttribute && t.getAttribute("role") === "combobox") {
      var box = document.getElementById(t.id + "-choices");
      var first = box && box.querySelector("[data-code]");
      if (event.key === "ArrowDown" && first) { event.preventDefault(); first.focus(); }
      if (event.key === "Enter" && first) { event.preventDefault(); choose(first); }
    }
    if (t && t.getAttribute && t.getAttribute("data-code")) {
      if (event.key === "ArrowDown" && t.nextElementSibling) { event.preventDefault(); t.nextElementSibling.focus(); }
      if (event.key === "ArrowUp") {
        event.preventDefault();
        if (t.previousElementSibling) { t.previousElementSibling.focus(); }
        else { document.getElementById(t.getAttribute("data-target")).focus(); }
      }
    }
  });
  // A typeahead answer that arrives after the field changed (a choice was made, more was
  // typed) is stale: dropping it keeps a closed list closed and Tab on the next field.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var box = event.detail.target;
    if (!box || !box.classList || !box.classList.contains("choices-box")) { return; }
    var input = document.getElementById(box.id.replace("-choices", ""));
    var asked = event.detail.requestConfig && event.detail.requestConfig.parameters;
    var value = input && asked ? asked[input.name] : undefined;  // htmx's FormData proxy
    if (typeof value === "string" && value !== input.value) {
      event.detail.shouldSwap = false;
    }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var box = event.detail.target;
    if (box && box.classList.contains("choices-box")) {
      var input = document.getElementById(box.id.replace("-choices", ""));
      if (input) { input.setAttribute("aria-expanded", box.querySelector("[data-code]") ? "true" : "false"); }
    }
  });

  // Problems after a refused close: move focus to the summary so it is read first.
  var problems = document.getElementById("problems") || document.getElementById("rx-problems");
  if (problems) { problems.focus(); }
})();
