// Dateline's service worker: shows the notifications readers asked for, one a story at a time.
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

// One push at a time: two arriving together must not both read the story's notification
// before either replaces it (the count, and the check for a copy, would both go wrong).
var queue = Promise.resolve();
// Each story's last notification ({id, count}), also kept here: the browser's list of shown
// notifications can lag behind, or lose one it closed by itself. The count runs until the
// reader opens the story from a notification.
var current = {};

self.addEventListener("push", function (event) {
  var message;
  try { message = event.data.json(); } catch (e) { return; }
  queue = queue.then(function () { return show(message); }, function () { return show(message); });
  event.waitUntil(queue);
});

function show(message) {
  var tag = "dateline-" + message.story;
  return self.registration.getNotifications({ tag: tag }).then(function (shown) {
    var previous = current[tag] || (shown.length && shown[0].data) || {};
    // The same notification twice (resent after a server crash): nothing new to show.
    if (previous.id === message.id) return;
    // One notification a story: a newer update replaces the older one and counts it.
    var count = (previous.count || 0) + 1;
    var options = {
      body: message.body,
      tag: tag,
      renotify: true,
      icon: "/static/icon-192.png",
      badge: "/static/icon-192.png",
      timestamp: Date.parse(message.timestamp) || Date.now(),
      data: { id: message.id, url: message.url, story: message.story, count: count },
      actions: [{ action: "unsubscribe", title: "Stop these alerts" }],
    };
    if (message.image) options.image = message.image;
    var title = count > 1 ? message.title + " (" + count + " new updates)" : message.title;
    current[tag] = options.data;
    return self.registration.showNotification(title, options);
  });
}

self.addEventListener("notificationclick", function (event) {
  var data = event.notification.data || {};
  delete current[event.notification.tag];
  event.notification.close();
  if (event.action === "unsubscribe") {
    event.waitUntil(unsubscribe(data.story));
    return;
  }
  var url = new URL(data.url || "/", self.location.origin).href;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    // A tab already on this story goes to the update; otherwise a new one opens.
    var storyPath = "/stories/" + data.story;
    for (var i = 0; i < windows.length; i++) {
      var path = new URL(windows[i].url).pathname;
      if (path === storyPath || path.indexOf(storyPath + "/") === 0) {
        var tab = windows[i];
        return (tab.navigate ? tab.navigate(url) : Promise.resolve(tab)).then(function (t) { return (t || tab).focus(); });
      }
    }
    return self.clients.openWindow(url);
  }));
});

// From the notification itself: stop this story's alerts, or the site's if that is what it came by.
function unsubscribe(story) {
  return self.registration.pushManager.getSubscription().then(function (sub) {
    if (!sub) return;
    function remove(topic) {
      return fetch("/api/v1/push/subscriptions", {
        method: "DELETE", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ endpoint: sub.endpoint, story: topic }),
      });
    }
    return remove(story).then(function (response) { if (response.status === 404) return remove("site"); });
  });
}
