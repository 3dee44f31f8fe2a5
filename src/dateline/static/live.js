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
  var keyEvents = story.querySelector(".key-events");
  var facts = story.querySelector(".facts");
  var keyOnly = story.dataset.filter === "key";
  var KEY_EVENTS_SHOWN = 8; // as many as the server lists
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

  // Times are shown the one way every page shows them (static/times.js).
  var times = window.datelineTime || { show: function () {}, showAll: function () {} };
  var showTime = times.show;
  var showTimes = times.showAll;

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

  function plain(html) {
    var scratch = document.createElement("div");
    scratch.innerHTML = html;
    // Paragraphs, a quote's words and its speaker are blocks: keep a space between them.
    scratch.querySelectorAll("p, footer, figcaption, li, blockquote").forEach(function (b) { b.append(" "); });
    return (scratch.textContent || "").replace(/\s+/g, " ").trim();
  }

  function summaryText(entry) {
    // As the server words an update on one line (plain_text.entry_text).
    var text;
    if (entry.kind === "quote") text = "“" + plain(entry.html.split("<footer>")[0]) + "” — " + (entry.speaker || "");
    else if (entry.kind === "image") text = entry.caption || entry.alt || plain(entry.html);
    else text = plain(entry.html);
    text = text.replace(/\s+/g, " ").trim();
    if (text.length <= 100) return text;
    var cut = text.slice(0, 99), space = cut.lastIndexOf(" ");
    return (space > 60 ? cut.slice(0, space) : cut).replace(/[ ,;:.]+$/, "") + "…";
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
        // Newest first, by publication, as the server lists them; at most as many.
        var later = null;
        items.querySelectorAll("li").forEach(function (other) {
          if (!later && new Date(other.querySelector("time").getAttribute("datetime")) < new Date(entry.published_at)) later = other;
        });
        items.insertBefore(item, later);
        while (items.children.length > KEY_EVENTS_SHOWN) items.lastElementChild.remove();
      }
      if (!item.isConnected) return; // older than the eight listed
      item.querySelector("a").href = "/stories/" + slug + "/entries/" + entry.id;
      var time = item.querySelector("time");
      time.setAttribute("datetime", entry.published_at);
      showTime(time);
      item.querySelector("span").textContent = summaryText(entry);
    }
    keyEvents.querySelector(".count").textContent = items.children.length;
    keyEvents.hidden = !items.children.length;
  }

  function jumpTo(el) {
    el.scrollIntoView({ behavior: "smooth", block: "start" });
    el.setAttribute("tabindex", "-1");
    el.focus({ preventScroll: true });
    highlight(el);
  }

  if (keyEvents) {
    // On a wide screen the key events are a sidebar, open; on a phone, one line that opens.
    var wide = window.matchMedia("(min-width: 64rem)");
    keyEvents.open = wide.matches;
    wide.addEventListener("change", function () { keyEvents.open = wide.matches; });
    // An update on this page: jump to it in place. Otherwise the link opens its own page.
    keyEvents.addEventListener("click", function (event) {
      var link = event.target.closest("li[data-id] a");
      var target = link && document.getElementById("entry-" + link.parentNode.dataset.id);
      if (!target) return;
      event.preventDefault();
      history.replaceState(null, "", "#" + target.id);
      jumpTo(target);
    });
  }

  function onFacts(data) {
    if (!facts) return;
    var list = facts.querySelector("ul");
    list.replaceChildren.apply(list, data.facts.map(function (fact) {
      var li = document.createElement("li");
      li.textContent = fact;
      return li;
    }));
    facts.classList.toggle("is-long", data.facts.length > 2);
    facts.hidden = !data.facts.length;
    var at = facts.querySelector(".facts-updated time");
    at.setAttribute("datetime", data.facts_updated_at || "");
    showTime(at);
    if (!facts.hidden) highlight(facts);
    announce("What we know has been updated.");
  }

  if (facts) {
    facts.querySelector(".facts-more").addEventListener("click", function (event) {
      var open = facts.classList.toggle("is-open");
      event.currentTarget.setAttribute("aria-expanded", open ? "true" : "false");
      event.currentTarget.textContent = open ? "Show less" : "Show all";
    });
  }

  // A standfirst clamped to three lines on a phone offers "More" only when it runs longer.
  var summaryBox = story.querySelector(".summary-box");
  var phone = window.matchMedia("(max-width: 30rem)");
  function fitSummary() {
    if (!summaryBox) return;
    var text = summaryBox.querySelector(".summary");
    var open = summaryBox.classList.contains("is-open");
    summaryBox.querySelector(".summary-more").hidden =
      text.hidden || !phone.matches || (!open && text.scrollHeight <= text.clientHeight + 1);
  }
  function openSummary(open) {
    var more = summaryBox.querySelector(".summary-more");
    summaryBox.classList.toggle("is-open", open);
    more.setAttribute("aria-expanded", open ? "true" : "false");
    more.textContent = open ? "Less" : "More";
  }
  if (summaryBox) {
    summaryBox.querySelector(".summary-more").addEventListener("click", function () {
      openSummary(!summaryBox.classList.contains("is-open"));
    });
    window.addEventListener("resize", fitSummary);
    fitSummary();
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
    if (keyOnly && !entry.key_event) return; // the reader asked for key events only
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
    if (keyOnly && !entry.key_event) return el && onDeleted(entry);
    if (!el && keyOnly && livePosition !== "none") return insertByTime(build(entry)); // marked key since
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
    // An update goes to its place among the others, in the page's order (ids grow with time).
    var id = parseInt(el.dataset.id, 10);
    var entries = list.querySelectorAll(".entry");
    for (var i = 0; i < entries.length; i++) {
      var other = parseInt(entries[i].dataset.id, 10);
      if (order === "oldest" ? other > id : other < id) return list.insertBefore(el, entries[i]);
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

  // A deleted update put back (the desk's Undo, or its history): in its place, not as news.
  function onRestored(entry) {
    if (document.getElementById("entry-" + entry.id)) return onUpdated(entry);
    updateKeyEvent(entry);
    if (keyOnly && !entry.key_event) return;
    if (entry.pinned && !limit) place(build(entry), true);
    else insertByTime(build(entry));
    if (pinnedList) pinnedList.hidden = !pinnedList.querySelector(".entry");
  }

  // Live figures: the server sends each block as readers see it, escaped throughout.
  var blocks = story.querySelector(".figures-blocks");

  function onBlock(data) {
    if (!blocks) return;
    var scratch = document.createElement("template");
    scratch.innerHTML = data.html;
    var fresh = scratch.content.firstElementChild;
    if (!fresh) return;
    var old = document.getElementById("block-" + data.id);
    if (old) {
      fresh.querySelectorAll("details").forEach(function (d, n) { // keep what the reader opened
        var was = old.querySelectorAll("details")[n];
        if (was) d.open = was.open;
      });
      old.replaceWith(fresh);
    } else {
      blocks.appendChild(fresh);
    }
    blocks.hidden = false;
    times.showAll(fresh);
  }

  function onBlockDeleted(data) {
    var old = document.getElementById("block-" + data.id);
    if (old) old.remove();
    if (blocks) blocks.hidden = !blocks.querySelector(".figures");
  }

  function onStory(data) {
    story.querySelector("h1").textContent = data.headline;
    baseTitle = data.headline + " · " + document.title.split(" · ").slice(-1)[0];
    if (!document.hidden) document.title = baseTitle;
    var summary = story.querySelector(".story-head .summary");
    // A standfirst rewritten while a reader has it open folds again, to be measured afresh.
    if (summaryBox && summary.textContent !== data.summary) openSummary(false);
    summary.textContent = data.summary;
    summary.hidden = !data.summary;
    fitSummary();
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
    source.addEventListener("story.facts", handler(onFacts));
    source.addEventListener("entry.restored", handler(onRestored));
    source.addEventListener("block.updated", handler(onBlock));
    source.addEventListener("block.deleted", handler(onBlockDeleted));
    source.addEventListener("reset", function () { location.reload(); });
    source.onopen = function () {
      clearTimeout(lostTimer);
      lostTimer = null;
      if (connection.dataset.state === "lost") {
        setConnection("Back online", "back");
        setTimeout(function () { if (connection.dataset.state === "back") setConnection("", "live"); }, 3000);
      } else if (connection.dataset.state !== "back") {
        connection.dataset.state = "live"; // open, with nothing to say: the line stays hidden
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

  // --- the reader's view (order, key events only), remembered on this device -----------------
  // The view is in the URL, so a shared link shows what the sharer saw; a bare story link
  // opens in the view this reader chose last.

  var VIEW_KEY = "dateline.view";
  story.addEventListener("click", function (event) {
    var choice = event.target.closest("[data-view-order], [data-view-filter]");
    if (!choice) return;
    var view = { order: order, filter: keyOnly ? "key" : "all" };
    if (choice.dataset.viewOrder) view.order = choice.dataset.viewOrder;
    if (choice.dataset.viewFilter) view.filter = choice.dataset.viewFilter;
    try { localStorage.setItem(VIEW_KEY, JSON.stringify(view)); } catch (e) {}
  });
  try {
    var chosen = JSON.parse(localStorage.getItem(VIEW_KEY) || "{}");
    var query = [];
    if (chosen.order === "oldest") query.push("order=oldest");
    if (chosen.filter === "key") query.push("filter=key");
    if (!framed && query.length && location.search === "" && order === "newest" && !keyOnly) {
      location.replace("/stories/" + slug + "?" + query.join("&") + location.hash);
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

  if (story.dataset.status === "ended") stop();
  else connect();
})();

// "Notify me" on a story's page: static/push.js (and the service worker it installs) is
// fetched only when a reader needs it, on the first click, or at once for a reader who
// already follows something (push.js then checks the browser still holds the subscription).
(function () {
  "use strict";

  var button = document.querySelector("button.notify[data-follow][data-script]");
  if (!button || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;

  var loading = null;
  function load() {
    loading = loading || new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = button.dataset.script;
      script.onload = function () { if (window.datelinePush) resolve(window.datelinePush); else reject(); };
      script.onerror = function () { loading = null; script.remove(); reject(); };
      document.head.appendChild(script);
    });
    return loading;
  }

  var follows = [];
  try { follows = JSON.parse(localStorage.getItem("dateline.follows") || "[]"); } catch (e) {}
  button.setAttribute("aria-pressed", follows.indexOf(button.dataset.follow) >= 0 ? "true" : "false");
  button.hidden = false;
  if (follows.length) load().catch(function () {});

  button.addEventListener("click", function () {
    if (window.datelinePush) return;  // push.js is in and handles its own clicks
    // The prompt opens now, while the click is fresh: a browser refuses it later.
    var asked = button.getAttribute("aria-pressed") === "true" ? null : Notification.requestPermission();
    button.disabled = true;
    load().then(function (push) { return push.toggle(button, asked); }, function () {
      var note = button.nextElementSibling;
      if (note && note.classList.contains("notify-status")) {
        note.textContent = navigator.onLine ? "Notifications could not be turned on just now. Try again in a moment."
          : "You seem to be offline. Try again when you are connected.";
      }
      button.disabled = false;
    });
  });
})();
