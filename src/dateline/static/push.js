// Dateline: "Notify me" buttons. A reader follows a story, or breaking news site-wide, with
// browser notifications; one click again turns them off. No account, no dependencies.
// The buttons stay hidden where the browser cannot receive push messages.
//
// The front page loads this at once. A story page loads it only when it is needed
// (static/live.js): on the reader's first click, or at once for a reader who already
// follows something. So a reader who never asks fetches neither it nor the service worker.
(function () {
  "use strict";

  var buttons = document.querySelectorAll("button.notify[data-follow]");
  if (!buttons.length || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;
  if (window.datelinePush) return;  // already running on this page

  var storeKey = "dateline.follows";
  var ready = navigator.serviceWorker.register("/sw.js").then(function () { return navigator.serviceWorker.ready; });

  function follows() {
    try { return JSON.parse(localStorage.getItem(storeKey) || "[]"); } catch (e) { return []; }
  }

  function remember(list) {
    try { localStorage.setItem(storeKey, JSON.stringify(list)); } catch (e) {}
    buttons.forEach(render);
  }

  function render(button) {
    var on = follows().indexOf(button.dataset.follow) >= 0;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    // A label with both wordings in it (the story page's, short on a phone) follows
    // aria-pressed through CSS; a plain one takes its wording from data-on and data-off.
    var label = button.querySelector(".notify-label") || button;
    if (!label.querySelector(".when-on")) label.textContent = on ? button.dataset.on : button.dataset.off;
    button.hidden = false;
  }

  function say(button, text) {
    var note = button.nextElementSibling;
    if (note && note.classList.contains("notify-status")) note.textContent = text;
  }

  // What the reader is told when it does not work: always our words, never the browser's
  // error string ("Registration failed - push service error" means nothing to a reader).
  var BLOCKED = "Notifications are blocked for this site. Allow them in your browser's site settings, then try again.";
  function explained(text) {
    var error = new Error(text);
    error.explained = true;
    return error;
  }

  function explain(error) {
    if (error && error.explained) return error.message;
    if (error && error.name === "NotAllowedError") return BLOCKED;
    if (error && error.name === "TypeError" && !navigator.onLine) return "You seem to be offline. Try again when you are connected.";
    if (error && (error.name === "AbortError" || error.name === "InvalidStateError")) {
      return "Your browser's notification service did not answer. Try again in a moment.";
    }
    return "Notifications could not be turned on in this browser. Try again in a moment.";
  }

  function applicationServerKey(base64url) {
    var raw = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function subscription(registration) {
    return registration.pushManager.getSubscription().then(function (existing) {
      if (existing) return existing;
      return fetch("/api/v1/push/vapid-public-key").then(function (response) {
        if (!response.ok) throw explained("Notifications are not set up on this site yet.");
        return response.json();
      }).then(function (key) {
        return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey(key.public_key) });
      });
    });
  }

  function send(method, body) {
    return fetch("/api/v1/push/subscriptions", {
      method: method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    }).then(function (response) {
      if (response.ok || (method === "DELETE" && response.status === 404)) return;
      var problem = response.status === 429 ? "Too many tries in a row. Wait a minute, then try again."
        : "The site could not save your choice just now. Try again in a moment.";
      throw explained(problem);
    });
  }

  // `asked`: the permission prompt, when the click that loaded this script opened it (the
  // browser allows it only while the click is fresh, not after a slow download).
  function follow(button, asked) {
    var topic = button.dataset.follow;
    return (asked || Notification.requestPermission()).then(function (permission) {
      if (permission === "denied") throw explained(BLOCKED);
      if (permission !== "granted") throw explained("Notifications stay off: your browser did not get an answer. Click again to choose.");
      return ready;
    }).then(subscription).then(function (sub) {
      return send("POST", Object.assign(sub.toJSON(), { story: topic }));
    }).then(function () {
      remember(follows().concat([topic]));
      say(button, "");
    });
  }

  function unfollow(button) {
    var topic = button.dataset.follow;
    return ready.then(function (registration) { return registration.pushManager.getSubscription(); }).then(function (sub) {
      var rest = follows().filter(function (t) { return t !== topic; });
      var done = sub ? send("DELETE", { endpoint: sub.endpoint, story: topic }) : Promise.resolve();
      return done.then(function () {
        if (sub && !rest.length) return sub.unsubscribe();  // nothing followed any more: let the browser forget us
      }).then(function () { remember(rest); say(button, ""); });
    });
  }

  function toggle(button, asked) {
    var on = button.getAttribute("aria-pressed") === "true";
    button.disabled = true;
    return (on ? unfollow(button) : follow(button, asked)).catch(function (error) {
      say(button, explain(error));
    }).then(function () { button.disabled = false; });
  }

  window.datelinePush = { toggle: toggle };
  buttons.forEach(function (button) {
    render(button);
    button.addEventListener("click", function () { toggle(button); });
  });

  // Forgotten by the browser (site data cleared, or the push service dropped us): show it.
  ready.then(function (registration) { return registration.pushManager.getSubscription(); }).then(function (sub) {
    if (!sub && follows().length) remember([]);
  }, function () {});
})();
