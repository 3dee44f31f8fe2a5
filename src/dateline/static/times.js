// Dateline: one way of showing a time on every page. The server writes each <time> as a
// full date in UTC (complete without scripts); here it becomes the reader's own time with
// the zone named ("14:02 CET"), "12 minutes ago" within the last hour, and the date as
// well when it is not today. The exact moment stays in the tooltip.
(function () {
  "use strict";

  var clockParts = { hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
  var clock = new Intl.DateTimeFormat(undefined, clockParts);
  var dated = new Intl.DateTimeFormat(undefined, Object.assign({ day: "numeric", month: "short" }, clockParts));
  var yeared = new Intl.DateTimeFormat(undefined, Object.assign({ day: "numeric", month: "short", year: "numeric" }, clockParts));
  var exact = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  var relative = "RelativeTimeFormat" in Intl ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

  function format(date, now) {
    now = now || new Date();
    var seconds = Math.round((now.getTime() - date.getTime()) / 1000);
    if (relative && seconds >= -60 && seconds < 3600) {
      if (seconds < 45) return "just now";
      return relative.format(-Math.round(seconds / 60), "minute");
    }
    if (date.toDateString() === now.toDateString()) return clock.format(date);
    return (date.getFullYear() === now.getFullYear() ? dated : yeared).format(date);
  }

  function show(el) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date)) return;
    el.textContent = format(date);
    el.title = exact.format(date);
  }

  function showAll(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) show(times[i]);
  }

  window.datelineTime = { format: format, show: show, showAll: showAll };
  showAll(document);
  // "3 minutes ago" keeps counting while the page is open.
  setInterval(function () { showAll(document); }, 30000);
})();
