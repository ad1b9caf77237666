// lexbuilder's one small script: relative times that stay fresh, and the live build log.
// Everything else works without it.
"use strict";

(function () {
  function relative(d) {
    var s = Math.round((d.getTime() - Date.now()) / 1000);
    var a = Math.abs(s);
    var units = [[31536000, "year"], [2592000, "month"], [604800, "week"], [86400, "day"], [3600, "hour"], [60, "minute"]];
    if (a < 45) return s > 5 ? "in a few seconds" : "just now";
    for (var i = 0; i < units.length; i++) {
      if (a >= units[i][0]) {
        var n = Math.round(a / units[i][0]);
        var u = n === 1 ? units[i][1] : units[i][1] + "s";
        return s < 0 ? n + " " + u + " ago" : "in " + n + " " + u;
      }
    }
    return s < 0 ? "1 minute ago" : "in 1 minute";
  }
  function refreshTimes() {
    var els = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < els.length; i++) {
      var d = new Date(els[i].getAttribute("datetime"));
      if (!isNaN(d.getTime())) els[i].textContent = relative(d);
    }
  }
  setInterval(refreshTimes, 30000);

  // Live log: append text nodes as bytes arrive; keep at most MAX_CHARS in the DOM so a
  // 100k-line log stays usable (the full log is a download away).
  var MAX_CHARS = 2000000;
  var log = document.getElementById("log");
  if (!log || !log.getAttribute("data-stream") || !window.EventSource) return;
  var status = document.getElementById("log-status");
  var follow = document.getElementById("log-follow");
  var trimmed = document.getElementById("log-trimmed");
  var stateEl = document.getElementById("build-state");
  var chars = log.textContent.length;
  var url = log.getAttribute("data-stream") + "?offset=" + encodeURIComponent(log.getAttribute("data-offset") || "0");
  var source = new EventSource(url);
  var pending = [];
  var scheduled = false;

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }
  function flush() {
    scheduled = false;
    if (!pending.length) return;
    var stick = follow ? follow.checked : atBottom();
    var text = pending.join("");
    pending = [];
    log.appendChild(document.createTextNode(text));
    chars += text.length;
    while (chars > MAX_CHARS && log.firstChild && log.firstChild !== log.lastChild) {
      chars -= log.firstChild.textContent.length;
      log.removeChild(log.firstChild);
      if (trimmed) trimmed.hidden = false;
    }
    if (stick) log.scrollTop = log.scrollHeight;
  }
  function setStatus(text) {
    if (status) status.textContent = text;
  }
  source.addEventListener("open", function () { setStatus("following live"); });
  source.addEventListener("log", function (e) {
    try {
      pending.push(JSON.parse(e.data).text);
    } catch (err) {
      return;
    }
    if (!scheduled) {
      scheduled = true;
      window.requestAnimationFrame ? requestAnimationFrame(flush) : setTimeout(flush, 50);
    }
  });
  source.addEventListener("state", function (e) {
    try {
      var s = JSON.parse(e.data).state;
      if (stateEl && s) {
        stateEl.textContent = s;
        stateEl.className = "state state-" + s.toLowerCase().replace(/[^a-z]/g, "");
      }
    } catch (err) { /* ignore */ }
  });
  source.addEventListener("end", function () {
    flush();
    source.close();
    setStatus("build finished; reloading for its results");
    setTimeout(function () { window.location.reload(); }, 1500);
  });
  source.addEventListener("error", function () { setStatus("connection lost; reconnecting"); });
  if (follow) follow.addEventListener("change", function () { if (follow.checked) log.scrollTop = log.scrollHeight; });
  log.scrollTop = log.scrollHeight;
})();
