// lexbuilder's one small script: relative times that stay fresh, the live build page, the log
// box that follows its end, and the schedule form's choices. Everything else works without it.
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

  // The schedule form: typing a time or a cron expression chooses that option.
  function chooseOnInput(inputId, value) {
    var input = document.getElementById(inputId);
    var radio = document.querySelector("input[name=scheduleKind][value=" + value + "]");
    if (!input || !radio) return;
    input.addEventListener("input", function () {
      if (input.value.trim() !== "") radio.checked = true;
    });
  }
  chooseOnInput("scheduleDailyAt", "daily");
  chooseOnInput("scheduleCron", "cron");

  var log = document.getElementById("log");
  if (!log) return;

  // The log box opens at its end, follows new lines while the reader is at the bottom, stops
  // following when they scroll up, and offers "Jump to end" meanwhile.
  var end = document.getElementById("log-end");
  var jump = document.getElementById("log-jump");
  var status = document.getElementById("log-status");
  var following = true;
  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  }
  function toEnd() {
    log.scrollTop = log.scrollHeight;
  }
  function showFollowing() {
    if (jump) jump.hidden = following || log.scrollHeight <= log.clientHeight;
    if (status && source) status.textContent = following ? "following live" : "paused while you read; jump to end to follow again";
  }
  log.addEventListener("scroll", function () {
    following = atBottom();
    showFollowing();
  });
  if (jump) {
    jump.addEventListener("click", function (e) {
      e.preventDefault();
      following = true;
      toEnd();
      showFollowing();
    });
  }
  var source = null;
  toEnd();
  showFollowing();

  // Live: new lines as they arrive, and the facts beside them (state, times, builder, files,
  // buttons) as the server renders them. At most MAX_CHARS stay in the DOM so a 100k-line log
  // stays usable (the full log is a download away).
  var MAX_CHARS = 2000000;
  if (!log.getAttribute("data-stream") || !window.EventSource) return;
  var trimmed = document.getElementById("log-trimmed");
  var facts = document.getElementById("build-facts");
  var chars = log.textContent.length;
  var url = log.getAttribute("data-stream") + "?offset=" + encodeURIComponent(log.getAttribute("data-offset") || "0");
  source = new EventSource(url);
  var pending = [];
  var scheduled = false;

  // Text with its coloured runs ([from, to, classes]) as text nodes and spans: never parsed as HTML.
  function nodesOf(part, into) {
    var text = part.text || "";
    var at = 0;
    var styles = part.styles || [];
    for (var i = 0; i < styles.length; i++) {
      var from = styles[i][0], to = styles[i][1];
      if (from > at) into.appendChild(document.createTextNode(text.slice(at, from)));
      var span = document.createElement("span");
      span.className = String(styles[i][2]);
      span.textContent = text.slice(from, to);
      into.appendChild(span);
      at = to;
    }
    if (at < text.length) into.appendChild(document.createTextNode(text.slice(at)));
    return text.length;
  }
  var size = document.getElementById("log-size");
  var received = 0;
  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
  }
  function flush() {
    scheduled = false;
    if (size && received) size.textContent = bytes(received);
    if (!pending.length) return;
    var stick = following;
    var frag = document.createDocumentFragment();
    for (var i = 0; i < pending.length; i++) chars += nodesOf(pending[i], frag);
    pending = [];
    log.insertBefore(frag, end);
    while (chars > MAX_CHARS && log.firstChild && log.firstChild !== end) {
      chars -= log.firstChild.textContent.length;
      log.removeChild(log.firstChild);
      if (trimmed) trimmed.hidden = false;
    }
    if (stick) toEnd();
    showFollowing();
  }
  source.addEventListener("open", function () { showFollowing(); });
  source.addEventListener("log", function (e) {
    try {
      var part = JSON.parse(e.data);
      pending.push(part);
      if (typeof part.offset === "number") received = part.offset;
    } catch (err) {
      return;
    }
    if (!scheduled) {
      scheduled = true;
      window.requestAnimationFrame ? requestAnimationFrame(flush) : setTimeout(flush, 50);
    }
  });
  source.addEventListener("facts", function (e) {
    try {
      var f = JSON.parse(e.data);
      // Rendered and escaped by the server's template, as on a page load.
      if (facts && typeof f.html === "string") facts.innerHTML = f.html;
      if (typeof f.title === "string") document.title = f.title;
      refreshTimes();
    } catch (err) { /* ignore */ }
  });
  source.addEventListener("end", function () {
    flush();
    source.close();
    source = null;
    if (status) status.textContent = "the build has finished";
    showFollowing();
  });
  source.addEventListener("error", function () { if (status && source) status.textContent = "connection lost; reconnecting"; });
})();
