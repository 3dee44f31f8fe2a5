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
  var clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  var editingTimers = {};

  function request(method, url, body, headers) {
    var options = { method: method, credentials: "same-origin", headers: Object.assign({ "X-CSRF-Token": csrf }, headers || {}) };
    if (body instanceof FormData) options.body = body;
    else if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    return fetch(url, options);
  }

  function problemText(response) {
    return response.json().then(function (p) { return p.detail || response.statusText; }, function () { return response.statusText; });
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
  var number = new Intl.NumberFormat();

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
      return problemText(response).then(function (text) { status.textContent = "Not published: " + text; });
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
      if (!response.ok) return problemText(response).then(function (text) { status.textContent = text; });
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
      if (!response.ok) return problemText(response).then(function (text) { note.textContent = "Upload refused: " + text; });
      return response.json().then(function (stored) {
        composer.image_url.value = stored.url;
        note.textContent = "Uploaded (" + stored.width + "×" + stored.height + "). Add a caption, credit and alt text.";
        saveDraft();
      });
    }, function () { note.textContent = "Upload failed: no connection."; });
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
    time.textContent = clock.format(new Date(entry.published_at));
    var badge = el.querySelector(".badge-pending");
    badge.hidden = !waiting;
    badge.textContent = entry.status === "pending" ? "Waiting for approval" : "Edit waiting for approval";
    el.querySelector(".badge-pin").hidden = !entry.pinned;
    el.querySelector(".badge-key").hidden = !entry.key_event;
    var edited = el.querySelector(".edited");
    edited.hidden = entry.revision < 2;
    edited.textContent = "Updated " + clock.format(new Date(entry.updated_at));
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

  function startEditing(el) {
    var entry = el._entry;
    el.classList.add("is-editing");
    var body = el.querySelector(".entry-body");
    var editor = document.createElement("div");
    editor.className = "inline-editor";
    editor.innerHTML = '<label>Edit update <textarea rows="5"></textarea></label>' +
      '<p class="conflict" role="alert" hidden></p>' +
      '<button type="button" class="primary" data-editor="save">Save</button> <button type="button" data-editor="cancel">Cancel</button>';
    var textarea = editor.querySelector("textarea");
    textarea.value = entry.body;
    body.hidden = true;
    body.after(editor);
    textarea.focus();
    var ping = function () { request("POST", api + "/entries/" + entry.id + "/editing"); };
    ping();
    var pinger = setInterval(ping, 15000);
    function finish(updated) {
      clearInterval(pinger);
      editor.remove();
      body.hidden = false;
      el.classList.remove("is-editing");
      fill(el, updated || el._theirs || entry);
      delete el._theirs;
    }
    editor.addEventListener("click", function (event) {
      var action = event.target.dataset.editor;
      if (action === "cancel") finish(null);
      if (action === "save") {
        patch(el, { body: textarea.value }).then(function (response) {
          if (response.ok) return response.json().then(finish);
          if (response.status === 412) {
            // Someone else saved first: show their version; ours stays in the box.
            return fetch(api + "/entries/" + entry.id, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (theirs) {
              el._entry = theirs;
              var conflict = editor.querySelector(".conflict");
              conflict.hidden = false;
              conflict.textContent = theirs.author.name === me ? "This update changed since you opened it. Current text: " : "Someone else changed this update. Their version: ";
              var pre = document.createElement("pre");
              pre.textContent = theirs.body;
              conflict.appendChild(pre);
              conflict.appendChild(document.createTextNode("Save again to replace it with yours, or cancel to keep theirs."));
            });
          }
          return problemText(response).then(function (text) { window.alert("Not saved: " + text); });
        });
      }
    });
  }

  list.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button || button.tagName === "A") return;
    var el = button.closest(".desk-entry");
    var entry = el._entry;
    var action = button.dataset.action;
    var done = function (response) {
      if (response.ok && response.status !== 204) return response.json().then(show);
      if (!response.ok) return problemText(response).then(function (text) { window.alert(text); });
    };
    if (action === "edit") startEditing(el);
    if (action === "pin") patch(el, { pinned: !entry.pinned }).then(done);
    if (action === "key") patch(el, { key_event: !entry.key_event }).then(done);
    if (action === "approve") request("POST", api + "/entries/" + entry.id + "/approve").then(done);
    if (action === "correct") {
      var note = window.prompt("Public correction note (shown under the update):", entry.correction || "");
      if (note !== null) patch(el, { correction: note }).then(done);
    }
    if (action === "delete" && window.confirm("Delete this update? Readers will no longer see it.")) {
      request("DELETE", api + "/entries/" + entry.id, undefined, { "If-Match": entry.etag }).then(function (response) {
        if (response.ok) remove(entry.id);
        else problemText(response).then(function (text) { window.alert(text); });
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
