/* The dashboard's page script: draws the charts from their embedded figure JSON, signs in
   and out through the cookie-session endpoints. No third-party code except Plotly, which the
   server serves itself. */
(function () {
  "use strict";

  function cookie(name) {
    var prefix = name + "=";
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(prefix) === 0) {
        return decodeURIComponent(parts[i].slice(prefix.length));
      }
    }
    return "";
  }

  /* The page's words come from its template (the server's message catalogue): a wrong
     password reads as the page's language says it, other refusals as the server explains. */
  function outcomeMessage(form, body, status) {
    if (status === 401) { return form.getAttribute("data-wrong"); }
    var issues = (body && body.issue) || [];
    var texts = issues.map(function (i) { return i.diagnostics || (i.details && i.details.text); })
      .filter(Boolean);
    return texts.length ? texts.join("; ")
      : form.getAttribute("data-failed").replace("{status}", String(status));
  }

  /* Plotly's own words (tool tips, month names) and separators in the page's language. */
  function chartConfig() {
    var config = { responsive: true, displaylogo: false };
    var block = document.getElementById("chart-locale");
    if (block) {
      var locale = JSON.parse(block.textContent);
      config.locale = locale.name;
      config.locales = {};
      config.locales[locale.name] = { dictionary: locale.dictionary, format: locale.format };
    }
    return config;
  }

  function drawCharts() {
    if (typeof window.Plotly === "undefined") { return; }
    var config = chartConfig();
    var blocks = document.querySelectorAll('script[type="application/json"][data-chart]');
    blocks.forEach(function (block) {
      var target = document.getElementById(block.getAttribute("data-chart"));
      if (!target) { return; }
      var fig = JSON.parse(block.textContent);
      var layout = fig.layout || {};
      if (target.clientWidth < 600) {
        /* a phone: the heading above the chart names it (a title cannot wrap), the legend
           takes the title's place, and the long category names the room under the bars */
        layout.title = { text: "" };
        layout.legend = { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom" };
        layout.margin = { l: 50, r: 10, t: 20, b: 40 };
      }
      window.Plotly.newPlot(target, fig.data || [], layout, config);
    });
  }

  function wireSignIn() {
    var form = document.getElementById("sign-in");
    if (!form) { return; }
    var error = document.getElementById("sign-in-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.hidden = true;
      var totp = form.elements.totp.value.trim();
      var body = { username: form.elements.username.value.trim(), password: form.elements.password.value };
      if (totp) { body.totp = totp; }
      fetch("/auth/staff/sign-in?session=cookie", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body)
      }).then(function (response) {
        if (response.ok) { window.location.reload(); return null; }
        return response.json().catch(function () { return null; }).then(function (outcome) {
          error.textContent = outcomeMessage(form, outcome, response.status);
          error.hidden = false;
        });
      }).catch(function () {
        error.textContent = form.getAttribute("data-unreachable");
        error.hidden = false;
      });
    });
  }

  function wireSignOut() {
    var button = document.getElementById("sign-out");
    if (!button) { return; }
    button.addEventListener("click", function () {
      fetch("/auth/sign-out", {
        method: "POST",
        headers: { "X-CSRF-Token": cookie("sokhoe_csrf") },
        credentials: "same-origin"
      }).finally(function () { window.location.assign("/dashboard"); });
    });
  }

  function start() {
    wireSignIn();
    wireSignOut();
    drawCharts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
