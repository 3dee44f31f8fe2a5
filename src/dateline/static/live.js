// Dateline live story page: follows /stories/{slug}/live and keeps the page current.
// No dependencies, no build step. The page is complete without it.
(function () {
  "use strict";

  var story = document.querySelector("article.story[data-slug]");
  if (!story) return;

  var slug = story.dataset.slug;
  var order = story.dataset.order;
  var livePosition = story.dataset.livePosition; // "top", "bottom" or "none"
  var lastId = parseInt(story.dataset.lastEventId, 10) || 0;
  var list = story.querySelector("section.entries");
  var pinnedList = story.querySelector("section.pinned");
  var keyEvents = story.querySelector("nav.key-events");
  var bar = story.querySelector("button.new-updates");
  var announcer = document.getElementById("announcer");
  var connection = story.querySelector(".connection");
  var template = document.getElementById("entry-template");
  var baseTitle = document.title;
  var held = []; // new entries waiting while the reader is down in older updates
  var missed = 0; // new entries that belong on another page than this one
  var unseen = 0; // arrived while the tab was in the background
  var limit = parseInt(story.dataset.limit, 10) || 0; // the teaser keeps its latest few
  var framed = document.documentElement.classList.contains("framed");

  // --- times, in the reader's own time zone --------------------------------------------

  var clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  var dated = new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  var relative = "RelativeTimeFormat" in Intl ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

  function ago(date) {
    var seconds = Math.round((date.getTime() - Date.now()) / 1000);
    if (!relative || seconds < -86400) return null;
    if (seconds > -45) return "just now";
    if (seconds > -3600) return relative.format(Math.round(seconds / 60), "minute");
    return relative.format(Math.round(seconds / 3600), "hour");
  }

  function showTime(el) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date)) return;
    var sameDay = date.toDateString() === new Date().toDateString();
    var absolute = sameDay ? clock.format(date) : dated.format(date);
    var rel = ago(date);
    el.textContent = rel && el.closest(".entry-time, .story-head") ? absolute + " · " + rel : absolute;
    el.title = date.toLocaleString();
  }

  function showTimes(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) showTime(times[i]);
  }

  // --- building and placing entries -----------------------------------------------------

  function fill(el, entry) {
    el.id = "entry-" + entry.id;
    el.dataset.id = entry.id;
    el.dataset.revision = entry.revision;
    el.className = "entry kind-" + entry.kind + (entry.pinned ? " is-pinned" : "") + (entry.key_event ? " is-key" : "");
    var link = el.querySelector(".entry-time");
    link.href = "/stories/" + slug + "/entries/" + entry.id;
    link.querySelector("time").setAttribute("datetime", entry.published_at);
    el.querySelector(".badge-pin").hidden = !entry.pinned;
    el.querySelector(".badge-key").hidden = !entry.key_event;
    var edited = el.querySelector(".edited");
    edited.hidden = entry.revision < 2;
    edited.querySelector("time").setAttribute("datetime", entry.updated_at);
    // `html` is sanitized by the server (allowlist); every other field goes in as text.
    el.querySelector(".entry-body").innerHTML = entry.html;
    el.querySelector(".byline").textContent = entry.author.name;
    showTimes(el);
    return el;
  }

  function build(entry) {
    return fill(template.content.firstElementChild.cloneNode(true), entry);
  }

  function summaryText(entry) {
    var scratch = document.createElement("div");
    scratch.innerHTML = entry.html;
    var text = (scratch.textContent || "").replace(/\s+/g, " ").trim();
    return text.length > 100 ? text.slice(0, 99) + "…" : text;
  }

  function updateKeyEvent(entry) {
    if (!keyEvents) return;
    var items = keyEvents.querySelector("ul");
    var item = items.querySelector('li[data-id="' + entry.id + '"]');
    if (!entry.key_event) {
      if (item) item.remove();
    } else {
      if (!item) {
        item = document.createElement("li");
        item.dataset.id = entry.id;
        item.innerHTML = '<a><time></time> <span></span></a>';
        items.insertBefore(item, items.firstChild);
      }
      item.querySelector("a").href = "#entry-" + entry.id;
      var time = item.querySelector("time");
      time.setAttribute("datetime", entry.published_at);
      time.textContent = clock.format(new Date(entry.published_at));
      item.querySelector("span").textContent = summaryText(entry);
    }
    keyEvents.hidden = !items.children.length;
  }

  function highlight(el) {
    el.classList.add("is-new");
    setTimeout(function () { el.classList.remove("is-new"); }, 4000);
  }

  function readingOlder() {
    // Down in older updates: do not move the text under the reader's eyes.
    return list.getBoundingClientRect().top < -40;
  }

  function place(el, pinned) {
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    if (limit) {
      list.insertBefore(el, list.querySelector(".entry"));
      var shown = list.querySelectorAll(".entry");
      for (var n = limit; n < shown.length; n++) shown[n].remove();
    } else if (pinned) {
      pinnedList.insertBefore(el, pinnedList.firstChild);
      pinnedList.hidden = false;
    } else if (order === "oldest") {
      list.appendChild(el);
    } else {
      var first = list.querySelector(".entry");
      list.insertBefore(el, first || null);
    }
  }

  function updateBar() {
    bar.hidden = held.length === 0;
    bar.textContent = held.length === 1 ? "1 new update" : held.length + " new updates";
  }

  function releaseHeld() {
    for (var i = 0; i < held.length; i++) {
      place(held[i].el, held[i].pinned);
      highlight(held[i].el);
    }
    held = [];
    updateBar();
  }

  bar.addEventListener("click", function () {
    if (missed) {
      location.href = "/stories/" + slug + "?order=newest";
      return;
    }
    releaseHeld();
    story.scrollIntoView({ behavior: "smooth", block: "start" });
    var first = list.querySelector(".entry");
    if (first) {
      first.setAttribute("tabindex", "-1");
      first.focus({ preventScroll: true });
    }
  });

  function countUnseen() {
    if (document.hidden) {
      unseen += 1;
      document.title = "(" + unseen + ") " + baseTitle;
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      unseen = 0;
      document.title = baseTitle;
    }
  });

  function onCreated(entry) {
    if (document.getElementById("entry-" + entry.id)) return onUpdated(entry);
    updateKeyEvent(entry);
    if (livePosition === "none" && !entry.pinned) {
      missed += 1;
      bar.hidden = false;
      bar.textContent = (missed === 1 ? "1 new update" : missed + " new updates") + ": see the latest";
    } else {
      var el = build(entry);
      if (order === "newest" && !entry.pinned && readingOlder()) {
        held.push({ el: el, pinned: false });
        updateBar();
      } else {
        place(el, entry.pinned);
        highlight(el);
      }
    }
    announcer.textContent = "New update: " + summaryText(entry);
    countUnseen();
  }

  function onUpdated(entry) {
    updateKeyEvent(entry);
    var el = document.getElementById("entry-" + entry.id);
    if (!el) {
      for (var i = 0; i < held.length; i++) {
        if (held[i].el.dataset.id == entry.id) return fill(held[i].el, entry);
      }
      if (entry.pinned && !limit) place(build(entry), true); // pinned from further down the story
      return;
    }
    var wasPinned = el.parentNode === pinnedList;
    fill(el, entry);
    if (!limit && entry.pinned !== wasPinned) { // the teaser has no pinned section: latest first
      el.remove();
      if (entry.pinned) place(el, true);
      else if (order === "newest") insertByTime(el);
      pinnedList.hidden = !pinnedList.querySelector(".entry");
    }
    highlight(el);
  }

  function insertByTime(el) {
    // An unpinned update goes back to its place among the others (ids grow with time).
    var id = parseInt(el.dataset.id, 10);
    var entries = list.querySelectorAll(".entry");
    for (var i = 0; i < entries.length; i++) {
      if (parseInt(entries[i].dataset.id, 10) < id) return list.insertBefore(el, entries[i]);
    }
    if (!story.querySelector('a[rel="next"]')) list.appendChild(el);
  }

  function onDeleted(data) {
    var el = document.getElementById("entry-" + data.id);
    if (el) el.remove();
    held = held.filter(function (h) { return h.el.dataset.id != data.id; });
    updateBar();
    updateKeyEvent({ id: data.id, key_event: false });
    if (pinnedList) pinnedList.hidden = !pinnedList.querySelector(".entry");
  }

  function onStory(data) {
    story.querySelector("h1").textContent = data.headline;
    baseTitle = data.headline + " · " + document.title.split(" · ").slice(-1)[0];
    if (!document.hidden) document.title = baseTitle;
    var summary = story.querySelector(".story-head .summary");
    summary.textContent = data.summary;
    summary.hidden = !data.summary;
    var marker = story.querySelector(".live-marker, .ended-marker, .scheduled-marker");
    var words = { live: ["live-marker", "Live"], ended: ["ended-marker", "Coverage ended"],
                  scheduled: ["scheduled-marker", "Coming up"] }[data.status];
    if (marker && words) {
      marker.className = words[0];
      marker.textContent = words[1];
    }
    var begins = story.querySelector(".coverage-begins");
    begins.hidden = !(data.status === "scheduled" && data.starts_at);
    if (!begins.hidden) {
      var at = begins.querySelector("time");
      at.setAttribute("datetime", data.starts_at);
      showTime(at);
    }
    var ended = story.querySelector(".coverage-ended");
    ended.hidden = data.status !== "ended";
    var closing = ended.querySelector(".closing-summary");
    closing.textContent = data.closing_summary || "";
    closing.hidden = !data.closing_summary;
    var wasEnded = story.dataset.status === "ended";
    story.dataset.status = data.status;
    if (data.status === "ended") {
      stop();
      announce("This coverage has ended.");
    } else if (wasEnded) {
      location.reload(); // reopened: the page comes back live, with all it needs for that
    }
  }

  function announce(text) {
    if (announcer) announcer.textContent = text;
  }

  function touchLastUpdated(iso) {
    var el = story.querySelector(".last-updated");
    if (el && iso) {
      el.setAttribute("datetime", iso);
      showTime(el);
    }
  }

  // --- the stream ---------------------------------------------------------------------

  var source = null;
  var lostTimer = null;

  function setConnection(text, state) {
    connection.textContent = text;
    connection.dataset.state = state;
    connection.hidden = !text;
  }

  function handler(fn) {
    return function (message) {
      var id = parseInt(message.lastEventId, 10);
      if (id && id <= lastId) return; // already shown: a replay overlapping the live tail
      if (id) lastId = id;
      var data = JSON.parse(message.data);
      fn(data);
      touchLastUpdated(data.updated_at || data.deleted_at);
    };
  }

  // An ended story's stream is over: the server ends it after the event that says so, and
  // answers 204 to a reconnection, which the browser obeys. The page then checks now and
  // then (a cached answer, as cheap as a page) whether the desk has reopened the coverage.
  var reopenCheck = null;
  var REOPEN_CHECK_MS = 60000;

  function stop() {
    if (source) source.close();
    source = null;
    clearTimeout(lostTimer);
    setConnection("", "ended");
    if (reopenCheck) return;
    reopenCheck = setInterval(checkReopened, REOPEN_CHECK_MS);
    // A reader coming back to the tab is told at once, not at the next check.
    document.addEventListener("visibilitychange", checkReopened);
  }

  function checkReopened() {
    if (document.hidden) return;
    fetch("/api/v1/stories/" + slug + "/events?after=" + lastId + "&limit=100", { credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (page) {
        if (!page) return;
        page.events.forEach(function (event) {
          if (event.type === "story.updated" && event.data.status !== "ended") location.reload();
        });
        if (!page.has_more) lastId = Math.max(lastId, page.last_event_id);
      })
      .catch(function () {});
  }

  function connect() {
    source = new EventSource("/stories/" + slug + "/live?last_event_id=" + lastId);
    source.addEventListener("entry.created", handler(onCreated));
    source.addEventListener("entry.updated", handler(onUpdated));
    source.addEventListener("entry.deleted", handler(onDeleted));
    source.addEventListener("story.updated", handler(onStory));
    source.addEventListener("reset", function () { location.reload(); });
    source.onopen = function () {
      clearTimeout(lostTimer);
      lostTimer = null;
      if (connection.dataset.state === "lost") {
        setConnection("Back online", "back");
        setTimeout(function () { if (connection.dataset.state === "back") setConnection("", "live"); }, 3000);
      }
    };
    source.onerror = function () {
      if (!source) return; // stopped: the coverage has ended
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (a 404: the story is gone or unpublished). Try once more later.
        setConnection("Offline: trying again shortly", "lost");
        setTimeout(connect, 15000);
        return;
      }
      // The browser reconnects by itself, sending Last-Event-ID: only say so if it takes a while.
      if (!lostTimer) lostTimer = setTimeout(function () { setConnection("Reconnecting…", "lost"); }, 2500);
    };
  }

  // --- order preference, remembered on this device ----------------------------------------

  var choices = story.querySelectorAll("[data-order-choice]");
  for (var i = 0; i < choices.length; i++) {
    choices[i].addEventListener("click", function (event) {
      try { localStorage.setItem("dateline.order", event.currentTarget.dataset.orderChoice); } catch (e) {}
    });
  }
  try {
    var preferred = localStorage.getItem("dateline.order");
    if (!framed && preferred === "oldest" && order === "newest" && location.search === "") {
      location.replace("/stories/" + slug + "?order=oldest");
      return;
    }
  } catch (e) {}

  // Embedded videos load from their provider only when the reader asks.
  story.addEventListener("click", function (event) {
    var play = event.target.closest(".embed-play");
    if (!play) return;
    var card = play.closest(".embed-player");
    var frame = document.createElement("iframe");
    frame.src = card.dataset.player;
    frame.title = play.textContent;
    frame.allow = "autoplay; encrypted-media; picture-in-picture; fullscreen";
    frame.referrerPolicy = "strict-origin-when-cross-origin";
    card.replaceChildren(frame);
  });

  showTimes(document);
  setInterval(function () { showTimes(story); }, 30000);
  if (story.dataset.status === "ended") stop();
  else connect();
})();
