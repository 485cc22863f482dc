// Atrium pages: progressive enhancement only; every page works without this file.
(function () {
  "use strict";

  // Ask before destructive form submissions (forms marked data-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // Avatar preview of the chosen file before it is uploaded.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.dataset.preview || !input.files || !input.files[0]) return;
    var img = document.getElementById(input.dataset.preview);
    if (img) img.src = URL.createObjectURL(input.files[0]);
  });

  // htmx: send the CSRF token of the page with every non-GET request it makes.
  document.addEventListener("htmx:configRequest", function (event) {
    var field = document.querySelector("input[name=csrf_token]");
    if (field && event.detail.verb !== "get") event.detail.parameters.csrf_token = field.value;
  });

  // Charts of the admin overview (uPlot), drawn from the data the page carries.
  function drawCharts() {
    var holder = document.getElementById("chart-data");
    if (!holder || typeof uPlot === "undefined") return;
    var data = JSON.parse(holder.dataset.series);
    var days = data.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
    var style = getComputedStyle(document.documentElement);
    var colour = style.getPropertyValue("--pico-primary").trim() || "#1f6feb";
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var key = el.dataset.chart;
      var series = [{}];
      var values = [days];
      if (key === "logins") {
        series.push({ label: el.dataset.labelSuccess, stroke: colour, width: 2 });
        series.push({ label: el.dataset.labelFailure, stroke: "#b42318", width: 2, dash: [6, 4] });
        values.push(data.logins_succeeded, data.logins_failed);
      } else {
        series.push({ label: el.dataset.label, stroke: colour, width: 2, fill: colour + "22" });
        values.push(data[key]);
      }
      var width = Math.max(280, el.clientWidth || 600);
      var plot = new uPlot({ width: width, height: 220, series: series, axes: [{}, {}], scales: { x: { time: true } } }, values, el);
      plot.root.setAttribute("role", "img");
      plot.root.setAttribute("aria-label", el.dataset.label);
      el.dataset.drawn = "true";
    });
  }

  // Charts of the analytics page: one uPlot per figure, series named by the page.
  var PALETTE = ["#1f6feb", "#b42318", "#107569", "#9e4400", "#6941c6", "#475467", "#c11574", "#3e7c17"];
  function drawAnalytics() {
    var holder = document.getElementById("analytics-data");
    if (!holder || typeof uPlot === "undefined") return;
    var data = JSON.parse(holder.dataset.series);
    var xs = data.starts.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
    var columns = {
      active: [data.dau, data.wau, data.mau],
      registrations: [data.registrations],
      adoption: [data.verified_share, data.mfa_adoption],
      logins: ["password", "mfa", "passkey", "social"].reduce(function (all, m) {
        return all.concat([data.logins[m + "_success"], data.logins[m + "_failure"]]);
      }, []),
      devices: ["desktop", "mobile", "tablet", "bot", "other"].map(function (k) { return data.devices[k]; })
    };
    document.querySelectorAll("[data-analytics-chart]").forEach(function (el) {
      var key = el.dataset.analyticsChart;
      var names = JSON.parse(el.dataset.names);
      var series = [{}];
      names.forEach(function (name, i) {
        var failed = key === "logins" && i % 2 === 1;
        series.push({ label: name, stroke: PALETTE[key === "logins" ? Math.floor(i / 2) : i], width: 2, dash: failed ? [6, 4] : undefined });
      });
      var width = Math.max(280, el.clientWidth || 600);
      var plot = new uPlot({ width: width, height: 220, series: series, axes: [{}, {}], scales: { x: { time: true } } }, [xs].concat(columns[key]), el);
      plot.root.setAttribute("role", "img");
      plot.root.setAttribute("aria-label", el.dataset.label);
      el.dataset.drawn = "true";
    });
  }
  // The header's unread count, kept live from the page's notification stream
  // (server-sent events for the session cookie; ui/live.py).
  function followUnread() {
    var holder = document.querySelector("[data-unread-stream]");
    if (!holder || typeof EventSource === "undefined") return;
    var badge = holder.querySelector(".badge");
    var source = new EventSource(holder.dataset.unreadStream);
    source.addEventListener("unread", function (event) {
      var data = JSON.parse(event.data);
      badge.textContent = data.label;
      badge.title = data.title || "";
      holder.hidden = data.count === 0;
    });
    source.addEventListener("revoked", function () { source.close(); });
    // Give the connection back when the page goes (browsers allow few per server).
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function ready() {
    drawCharts();
    drawAnalytics();
    followUnread();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
