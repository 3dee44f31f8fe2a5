// Dateline newsroom desk: compose, publish, edit, approve, and see the story live.
// Talks to the JSON API with the session cookie and its CSRF token. No dependencies.
(function () {
  "use strict";

  var desk = document.querySelector(".desk[data-slug]");
  if (!desk) return;

  var slug = desk.dataset.slug;
  var me = desk.dataset.me;
  var canEdit = desk.dataset.canEdit === "yes";
  var csrf = document.querySelector('meta[name="dateline-csrf"]').content;
  var lastId = parseInt(desk.dataset.lastEventId, 10) || 0;
  var list = desk.querySelector(".desk-entries");
  var template = document.getElementById("desk-entry");
  var composer = document.getElementById("composer");
  var status = composer.querySelector(".composer-status");
  var preview = composer.querySelector(".preview");
  var connection = desk.querySelector(".connection");
  var api = "/api/v1/stories/" + slug;
  var draftKey = "dateline.draft." + slug + "." + me;
  // Times are shown the one way every page shows them (static/times.js, loaded first).
  var times = window.datelineTime;
  var editingTimers = {};
  var number = new Intl.NumberFormat();

  function request(method, url, body, headers) {
    var options = { method: method, credentials: "same-origin", headers: Object.assign({ "X-CSRF-Token": csrf }, headers || {}) };
    if (body instanceof FormData) options.body = body;
    else if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    return fetch(url, options);
  }

  // --- what went wrong, in the reporter's words ------------------------------------------
  // The API's messages are exact for scripts ("image_url: must be an http:// or https:// URL");
  // the desk says what to do instead. The exact message stays in the element's data-detail.

  var LABELS = { body: "The text", speaker: "The speaker's name", role: "The speaker's role", caption: "The caption",
    credit: "The credit", alt: "The alt text", url: "The link", correction: "The correction", headline: "The headline" };
  var MISSING = { body: "Write something first.", speaker: "Say who said it: the speaker's name is missing.",
    image_url: "Choose a photo first.", alt: "Describe the photo for readers who cannot see it (alt text).",
    url: "Paste the link to embed first." };
  var BY_STATUS = {
    401: "You are signed out. Sign in again in another tab; what you wrote is kept here.",
    403: "Your role cannot do this; ask an editor.",
    413: "That is too big to send.",
    429: "Too many attempts at once. Wait a few seconds and try again.",
    500: "Something went wrong on the server. Try again; if it keeps happening, tell whoever runs Dateline.",
    503: "The server is busy. Try again in a moment."
  };

  function sayPlainly(field, message, status) {
    var name = field.split(".").pop();
    var missing = /needs (.+)$/.exec(message);
    if (/needs a body$/.test(message)) return MISSING.body;
    if (missing) return missing[1].split(" and ").map(function (f) { return MISSING[f] || "Fill in the " + f + "."; }).join(" ");
    var most = /at most (\d+)/.exec(message);
    if (most) return (LABELS[name] || "This") + " is too long: at most " + number.format(+most[1]) + " characters.";
    if (name === "image_url") return MISSING.image_url;
    if (name === "url") return "That link does not work: paste the full address, starting with https://.";
    if (/does not apply/.test(message)) return "Part of this form does not fit this kind of update; reload the desk.";
    if (/has ended/.test(message)) return "The coverage has ended. An editor can reopen it to post again.";
    if (status in BY_STATUS && status !== 403) return BY_STATUS[status];
    return message.charAt(0).toUpperCase() + message.slice(1) + (/[.!?]$/.test(message) ? "" : ".");
  }

  function plainProblem(problem, status) {
    if (status === 401 || status === 429 || status >= 500) return BY_STATUS[status] || BY_STATUS[500];
    var errors = problem.errors && problem.errors.length ? problem.errors : [{ field: "", message: problem.detail || "" }];
    var said = errors.map(function (e) { return sayPlainly(e.field || "", e.message || "", status); });
    return said.filter(function (text, n) { return said.indexOf(text) === n; }).join(" ");
  }

  // Resolves to {text, detail}: the plain words, and the API's own for the tooltip.
  function problemOf(response) {
    return response.json().then(function (p) {
      return { text: plainProblem(p, response.status), detail: p.detail || response.statusText };
    }, function () {
      return { text: BY_STATUS[response.status] || "That did not work (" + response.status + "). Try again.", detail: response.statusText };
    });
  }

  function say(el, problem, prefix) {
    el.textContent = (prefix || "") + problem.text;
    el.dataset.detail = problem.detail;
    el.hidden = false;
  }

  // --- the composer -------------------------------------------------------------------

  function kind() {
    return composer.querySelector('input[name="kind"]:checked').value;
  }

  function showKindFields() {
    var chosen = kind();
    composer.querySelectorAll(".kind-fields").forEach(function (el) { el.hidden = el.dataset.kind !== chosen; });
  }

  // Each kind's fields, as the server defines them (vocabulary.KIND_FIELDS).
  var kindFields = JSON.parse(composer.dataset.fields);
  var allFields = Object.keys(kindFields).reduce(function (all, k) { return all.concat(kindFields[k]); }, []);

  function payload() {
    var data = { kind: kind(), body: composer.body.value };
    var fields = kindFields[data.kind] || [];
    fields.forEach(function (name) { data[name] = composer[name].value.trim(); });
    if (composer.key_event.checked) data.key_event = true;
    if (composer.pinned && composer.pinned.checked) data.pinned = true;
    if (composer.notify && composer.notify.checked) data.notify = true;
    return data;
  }

  function newKey() {
    return (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random().toString(16).slice(2);
  }

  // The draft, with the Idempotency-Key it will be sent with, survives a closed laptop.
  function saveDraft() {
    var draft = payload();
    draft.key = composer.dataset.key || (composer.dataset.key = newKey());
    try { localStorage.setItem(draftKey, JSON.stringify(draft)); } catch (e) {}
  }

  function restoreDraft() {
    var draft = null;
    try { draft = JSON.parse(localStorage.getItem(draftKey) || "null"); } catch (e) {}
    if (!draft) return;
    composer.querySelector('input[name="kind"][value="' + draft.kind + '"]').checked = true;
    ["body"].concat(allFields).forEach(function (name) {
      if (draft[name]) composer[name].value = draft[name];
    });
    composer.key_event.checked = !!draft.key_event;
    if (composer.pinned) composer.pinned.checked = !!draft.pinned;
    if (composer.notify) composer.notify.checked = !!draft.notify;
    composer.dataset.key = draft.key;
    showKindFields();
    status.textContent = "Draft restored.";
  }

  function clearComposer() {
    composer.body.value = "";
    allFields.forEach(function (name) { composer[name].value = ""; });
    composer.file.value = "";
    composer.querySelector(".upload-status").textContent = "";
    composer.key_event.checked = false;
    if (composer.pinned) composer.pinned.checked = false;
    if (composer.notify) composer.notify.checked = false;
    preview.hidden = true;
    delete composer.dataset.key;
    try { localStorage.removeItem(draftKey); } catch (e) {}
    composer.body.focus();
  }

  // --- notifications: how far the fan-out has got --------------------------------------

  var pushProgress = desk.querySelector(".push-progress");

  function followNotification(id) {
    request("GET", api + "/notifications").then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (body) {
      var note = body && body.notifications.filter(function (n) { return n.id === id; })[0];
      if (!note) return;
      var text = "Notification: sent to " + number.format(note.sent) + " of " + number.format(note.recipients);
      if (note.failed) text += ", " + number.format(note.failed) + " failed";
      if (note.removed) text += ", " + number.format(note.removed) + " unsubscribed";
      text += note.finished_at ? "." : "…";
      if (note.failed && note.last_error) text += " Last error: " + note.last_error;
      pushProgress.textContent = text;
      pushProgress.hidden = false;
      if (!note.finished_at) setTimeout(function () { followNotification(id); }, 1000);
    }, function () { setTimeout(function () { followNotification(id); }, 3000); });
  }

  var sending = false;

  // Publish; on a network failure retry with the same Idempotency-Key until it lands:
  // the server does it once, however many times the request arrives.
  function publish(attempt) {
    if (sending && !attempt) return;
    sending = true;
    saveDraft();
    var key = composer.dataset.key;
    var sent = payload();
    status.textContent = attempt ? "Connection lost; retrying (" + attempt + ")…" : "Publishing…";
    request("POST", api + "/entries", sent, { "Idempotency-Key": key }).then(function (response) {
      if (response.ok) {
        return response.json().then(function (entry) {
          sending = false;
          status.textContent = entry.status === "pending" ? "Sent for approval." : "Published.";
          // On a slow network the reporter may have started the next post: keep it, with a new key.
          if (JSON.stringify(payload()) === JSON.stringify(sent)) clearComposer();
          else { delete composer.dataset.key; saveDraft(); }
          show(entry);
          if (entry.notification) followNotification(entry.notification);
        });
      }
      sending = false;
      return problemOf(response).then(function (problem) { say(status, problem, "Not published. "); });
    }, function () {
      setTimeout(function () { publish((attempt || 0) + 1); }, Math.min(1000 * Math.pow(2, attempt || 0), 15000));
    });
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    publish(0);
  });
  composer.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      publish(0);
    }
  });
  composer.addEventListener("input", saveDraft);
  composer.addEventListener("change", function (event) {
    if (event.target.name === "kind") showKindFields();
    if (event.target.name === "file") upload(event.target.files[0]);
    saveDraft();
  });
  composer.querySelector(".preview-button").addEventListener("click", function () {
    request("POST", "/api/v1/preview", payload()).then(function (response) {
      if (!response.ok) return problemOf(response).then(function (problem) { say(status, problem, "No preview yet. "); });
      status.textContent = "";
      return response.json().then(function (result) {
        preview.innerHTML = result.html; // sanitized by the server
        preview.hidden = false;
      });
    });
  });

  function megabytes(size) {
    return (size / (1024 * 1024)).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  function upload(file) {
    if (!file) return;
    var note = composer.querySelector(".upload-status");
    var limit = parseInt(composer.file.dataset.maxBytes, 10);
    if (limit && file.size > limit) { // refused here, before minutes of uploading for nothing
      note.textContent = "Too big to upload: " + file.name + " is " + megabytes(file.size) + "; the limit is " +
        megabytes(limit) + ". Send a smaller copy (most phones offer a smaller size when sharing a photo).";
      composer.file.value = "";
      return;
    }
    note.textContent = "Uploading " + file.name + " (" + megabytes(file.size) + ")…";
    var form = new FormData();
    form.append("file", file);
    request("POST", "/api/v1/uploads", form).then(function (response) {
      if (!response.ok) return problemOf(response).then(function (problem) {
        // The server's 413 names its limit, which may be lower than the page was told
        if (response.status === 413 && problem.detail) problem.text = problem.detail.charAt(0).toLowerCase() + problem.detail.slice(1);
        say(note, problem, "Upload refused: ");
      });
      return response.json().then(function (stored) {
        composer.image_url.value = stored.url;
        note.textContent = "Uploaded (" + stored.width + "×" + stored.height + "). Add a caption, credit and alt text.";
        saveDraft();
      });
    }, function () { note.textContent = "Not uploaded: no connection. Choose the photo again when you are back online."; });
  }

  // --- the live list of updates -------------------------------------------------------

  function fill(el, entry) {
    el.id = "desk-entry-" + entry.id;
    el.dataset.id = entry.id;
    el.dataset.revision = entry.revision;
    el._entry = entry;
    var waiting = entry.status === "pending" || entry.edit_pending === true;
    el.classList.toggle("is-pending", waiting);
    var time = el.querySelector("time");
    time.setAttribute("datetime", entry.published_at);
    times.show(time);
    var badge = el.querySelector(".badge-pending");
    badge.hidden = !waiting;
    badge.textContent = entry.status === "pending" ? "Waiting for approval" : "Edit waiting for approval";
    el.querySelector(".badge-pin").hidden = !entry.pinned;
    el.querySelector(".badge-key").hidden = !entry.key_event;
    var edited = el.querySelector(".edited");
    edited.hidden = entry.revision < 2;
    edited.textContent = "Updated " + times.format(new Date(entry.updated_at));
    el.querySelector(".byline").textContent = entry.author.name;
    el.querySelector(".entry-body").innerHTML = entry.html; // sanitized by the server
    var mine = entry.author.username === me;
    el.querySelector('[data-action="approve"]').hidden = !(canEdit && waiting);
    el.querySelector('[data-action="edit"]').hidden = !(canEdit || mine);
    el.querySelector('[data-action="correct"]').hidden = !(canEdit || mine);
    el.querySelector('[data-action="key"]').hidden = !(canEdit || mine);
    el.querySelector('[data-action="key"]').textContent = entry.key_event ? "Not a key event" : "Key event";
    el.querySelector('[data-action="pin"]').hidden = !canEdit;
    el.querySelector('[data-action="pin"]').textContent = entry.pinned ? "Unpin" : "Pin";
    el.querySelector('[data-action="delete"]').hidden = !canEdit;
    el.querySelector('[data-action="history"]').href = "/newsroom/stories/" + slug + "/entries/" + entry.id + "/history";
    return el;
  }

  function show(entry) {
    var el = document.getElementById("desk-entry-" + entry.id);
    if (el) {
      if (el.classList.contains("is-editing")) {
        el._theirs = entry; // someone else saved while we edit: our save will be refused
        return;
      }
      return fill(el, entry);
    }
    el = fill(template.content.firstElementChild.cloneNode(true), entry);
    var after = null;
    list.querySelectorAll(".desk-entry").forEach(function (other) {
      if (!after && parseInt(other.dataset.id, 10) < entry.id) after = other;
    });
    list.insertBefore(el, after);
  }

  function remove(id) {
    var el = document.getElementById("desk-entry-" + id);
    if (el) el.remove();
  }

  function showPresence(data) {
    if (data.user === me) return;
    var el = document.getElementById("desk-entry-" + data.id);
    if (!el) return;
    var badge = el.querySelector(".presence");
    badge.textContent = data.name + " is editing";
    badge.hidden = false;
    clearTimeout(editingTimers[data.id]);
    editingTimers[data.id] = setTimeout(function () { badge.hidden = true; }, data.seconds * 1000);
  }

  function patch(el, changes) {
    var entry = el._entry;
    return request("PATCH", api + "/entries/" + entry.id, changes, { "If-Match": entry.etag });
  }

  // --- editing an update in place: every field of its kind, and the correction -------------

  // The content fields the inline editor offers for an entry's kind: all but the photo itself
  // (a new photo is a new update) and the correction, which has its own form.
  function editableFields(entryKind) {
    return (kindFields[entryKind] || []).filter(function (name) { return name !== "image_url" && name !== "correction"; });
  }

  function openForm(el, templateId, onSubmit) {
    var entry = el._entry;
    el.classList.add("is-editing");
    var body = el.querySelector(".entry-body");
    var form = document.getElementById(templateId).content.firstElementChild.cloneNode(true);
    body.hidden = true;
    el.querySelector(".entry-actions").hidden = true;
    body.after(form);
    var ping = function () { request("POST", api + "/entries/" + entry.id + "/editing"); };
    ping();
    var pinger = setInterval(ping, 15000);
    function finish(updated) {
      clearInterval(pinger);
      form.remove();
      body.hidden = false;
      el.querySelector(".entry-actions").hidden = false;
      el.classList.remove("is-editing");
      fill(el, updated || el._theirs || el._entry);
      delete el._theirs;
      var again = el.querySelector('[data-action="edit"]');
      if (again && !again.hidden) again.focus();
    }
    form.addEventListener("click", function (event) {
      if (event.target.dataset.editor === "cancel") finish(null);
    });
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") finish(null);
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      onSubmit(form, finish);
    });
    form._finish = finish;
    return form;
  }

  // Save `changes`; when someone else saved first, show their version and keep ours in the form.
  function save(el, form, changes, finish) {
    var error = form.querySelector(".editor-error");
    error.hidden = true;
    if (!Object.keys(changes).length) return finish(null);
    var button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    patch(el, changes).then(function (response) {
      button.disabled = false;
      if (response.ok) return response.json().then(finish);
      if (response.status === 412) return showConflict(el, form);
      return problemOf(response).then(function (problem) { say(error, problem, "Not saved. "); });
    }, function () {
      button.disabled = false;
      say(error, { text: "No connection: nothing was saved. Save again when you are back online.", detail: "" });
    });
  }

  function showConflict(el, form) {
    var entry = el._entry;
    return fetch(api + "/entries/" + entry.id, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (theirs) {
      el._entry = theirs;
      var conflict = form.querySelector(".conflict");
      if (!conflict) conflict = form.querySelector(".editor-error");
      conflict.hidden = false;
      conflict.textContent = theirs.author.username === me ? "This update changed since you opened it. It now reads: " : "Someone else changed this update. Their version: ";
      var pre = document.createElement("pre");
      pre.textContent = theirs.body;
      conflict.appendChild(pre);
      conflict.appendChild(document.createTextNode("Save again to replace it with yours, or cancel to keep theirs."));
    });
  }

  function startEditing(el) {
    var entry = el._entry;
    var fields = editableFields(entry.kind);
    var form = openForm(el, "entry-editor", function (form, finish) {
      var changes = {};
      if (form.elements.body.value !== entry.body) changes.body = form.elements.body.value;
      fields.forEach(function (name) {
        var value = form.elements[name].value.trim();
        if (value !== (entry[name] || "")) changes[name] = value;
      });
      save(el, form, changes, finish);
    });
    form.querySelectorAll(".editor-fields").forEach(function (group) {
      if (group.dataset.kind !== entry.kind) group.remove();
    });
    fields.forEach(function (name) { form.elements[name].value = entry[name] || ""; });
    form.elements.body.value = entry.body;
    form.setAttribute("aria-label", "Edit this update");
    (form.querySelector("input") || form.elements.body).focus();
  }

  function startCorrecting(el) {
    var entry = el._entry;
    var form = openForm(el, "correction-editor", function (form, finish) {
      var note = form.elements.correction.value.replace(/\s+/g, " ").trim();
      if (!note) return say(form.querySelector(".editor-error"), { text: "Write the correction first: what was wrong, and what is right.", detail: "" });
      save(el, form, note === (entry.correction || "") ? {} : { correction: note }, finish);
    });
    form.elements.correction.value = entry.correction || "";
    var removeButton = form.querySelector('[data-editor="remove"]');
    removeButton.hidden = !entry.correction;
    removeButton.addEventListener("click", function () { save(el, form, { correction: "" }, form._finish); });
    form.elements.correction.focus();
  }

  // --- deleting, with a moment to undo it ------------------------------------------------

  var undoBar = document.querySelector(".undo-bar");
  var undoTimer = null;
  var UNDO_SECONDS = 30;

  function offerUndo(entry) {
    clearTimeout(undoTimer);
    undoBar.querySelector(".undo-text").textContent = "Update deleted: readers no longer see it.";
    undoBar.hidden = false;
    undoBar.querySelector(".undo").onclick = function () {
      undoBar.querySelector(".undo-text").textContent = "Restoring…";
      request("POST", api + "/entries/" + entry.id + "/restore").then(function (response) {
        if (response.ok) {
          return response.json().then(function (restored) {
            show(restored);
            undoBar.querySelector(".undo-text").textContent = "Restored.";
            undoTimer = setTimeout(function () { undoBar.hidden = true; }, 3000);
          });
        }
        return problemOf(response).then(function (problem) { undoBar.querySelector(".undo-text").textContent = "Not restored. " + problem.text; });
      }, function () {
        undoBar.querySelector(".undo-text").textContent = "Not restored: no connection. It can be restored later from the update's history.";
      });
    };
    undoTimer = setTimeout(function () { undoBar.hidden = true; }, UNDO_SECONDS * 1000);
  }

  function alertProblem(el, response) {
    return problemOf(response).then(function (problem) {
      var note = el.querySelector(".entry-error");
      say(note, problem);
    });
  }

  list.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button || button.tagName === "A") return;
    var el = button.closest(".desk-entry");
    var entry = el._entry;
    var action = button.dataset.action;
    el.querySelector(".entry-error").hidden = true;
    var done = function (response) {
      if (response.ok && response.status !== 204) return response.json().then(show);
      if (!response.ok) return alertProblem(el, response);
    };
    if (action === "edit") startEditing(el);
    if (action === "correct") startCorrecting(el);
    if (action === "pin") patch(el, { pinned: !entry.pinned }).then(done);
    if (action === "key") patch(el, { key_event: !entry.key_event }).then(done);
    if (action === "approve") request("POST", api + "/entries/" + entry.id + "/approve").then(done);
    if (action === "delete") {
      request("DELETE", api + "/entries/" + entry.id, undefined, { "If-Match": entry.etag }).then(function (response) {
        if (!response.ok) return alertProblem(el, response);
        remove(entry.id);
        offerUndo(entry);
      });
    }
  });

  // --- following the story --------------------------------------------------------------

  function follow() {
    var source = new EventSource("/newsroom/stories/" + slug + "/live?last_event_id=" + lastId);
    function on(type, handler) {
      source.addEventListener(type, function (message) {
        var id = parseInt(message.lastEventId, 10);
        if (id && id <= lastId) return;
        if (id) lastId = id;
        handler(JSON.parse(message.data));
      });
    }
    on("entry.created", show);
    on("entry.updated", show);
    on("newsroom.submitted", show);
    on("entry.deleted", function (data) { remove(data.id); });
    on("entry.restored", show);
    // Live figures are kept by figures_desk.js: it hears of others' changes through this stream.
    ["block.updated", "block.deleted"].forEach(function (type) {
      on(type, function (data) { document.dispatchEvent(new CustomEvent("dateline:block", { detail: data })); });
    });
    on("newsroom.editing", showPresence);
    source.addEventListener("reset", function () { location.reload(); });
    source.onopen = function () { connection.hidden = true; };
    source.onerror = function () {
      connection.textContent = "Reconnecting to the story…";
      connection.hidden = false;
    };
  }

  fetch(api + "/entries?limit=50", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (page) {
    page.entries.slice().reverse().forEach(show);
    follow();
  });
  showKindFields();
  restoreDraft();

  // A scheduled start is typed in the editor's own time: send its offset from UTC with it.
  document.querySelectorAll("form[data-local-time]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var typed = new Date(form.elements.starts_at.value);
      if (!isNaN(typed)) form.elements.utc_offset_minutes.value = String(-typed.getTimezoneOffset());
    });
  });
})();
