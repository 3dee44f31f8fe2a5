// Dateline: "Notify me" buttons. A reader follows a story, or breaking news site-wide, with
// browser notifications; one click again turns them off. No account, no dependencies.
// The buttons stay hidden where the browser cannot receive push messages.
(function () {
  "use strict";

  var buttons = document.querySelectorAll("button.notify[data-follow]");
  if (!buttons.length || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;

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
    button.textContent = on ? button.dataset.on : button.dataset.off;
    button.hidden = false;
  }

  function say(button, text) {
    var note = button.nextElementSibling;
    if (note && note.classList.contains("notify-status")) note.textContent = text;
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
        if (!response.ok) throw new Error("Notifications are not set up on this site yet.");
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
      return response.json().then(function (p) { throw new Error(p.detail || response.statusText); });
    });
  }

  function follow(button) {
    var topic = button.dataset.follow;
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") throw new Error("Notifications are blocked for this site in your browser's settings.");
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

  buttons.forEach(function (button) {
    render(button);
    button.addEventListener("click", function () {
      var on = button.getAttribute("aria-pressed") === "true";
      button.disabled = true;
      (on ? unfollow(button) : follow(button)).catch(function (error) {
        say(button, error && error.message ? error.message : "Notifications could not be turned on.");
      }).then(function () { button.disabled = false; });
    });
  });

  // Forgotten by the browser (site data cleared, or the push service dropped us): show it.
  ready.then(function (registration) { return registration.pushManager.getSubscription(); }).then(function (sub) {
    if (!sub && follows().length) remember([]);
  }, function () {});
})();
