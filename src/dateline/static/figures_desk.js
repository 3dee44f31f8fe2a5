// Dateline desk: live figures. A compact table editor, keyboard first: Enter in a row's last
// cell adds a row, Ctrl+Enter publishes. Shares are computed by the server from counts; a
// total well short of 100 % is shown before publishing and must be confirmed.
(function () {
  "use strict";

  var panel = document.querySelector(".figures-desk");
  if (!panel) return;
  var desk = document.querySelector(".desk[data-slug]");
  var api = "/api/v1/stories/" + desk.dataset.slug + "/blocks";
  var csrf = document.querySelector('meta[name="dateline-csrf"]').content;
  var list = panel.querySelector(".figures-list");
  var form = panel.querySelector(".figures-editor");
  var rowsBody = form.querySelector("tbody");
  var rowTemplate = document.getElementById("figure-row");
  var status = form.querySelector(".figures-status");
  var blocks = {};
  var editing = null; // the block being edited, or null for a new one
  var confirmed = null; // the body whose warnings the editor has seen and accepted

  function request(method, url, body, headers) {
    var options = { method: method, credentials: "same-origin",
      headers: Object.assign({ "X-CSRF-Token": csrf, "Content-Type": "application/json" }, headers || {}) };
    if (body !== undefined) options.body = JSON.stringify(body);
    return fetch(url, options);
  }

  function problem(response) {
    return response.json().then(function (p) { return p.detail || response.statusText; }, function () { return response.statusText; });
  }

  function kind() { return form.elements.kind.value; }

  function showKind() {
    var k = kind();
    form.dataset.kind = k;
    form.querySelector(".share-head").hidden = k !== "results";
    form.querySelector(".source-head").hidden = k !== "comparison";
    rowsBody.querySelectorAll("tr").forEach(showRowKind);
    form.querySelector(".add-row").hidden = k === "counter" && rowsBody.rows.length >= 1;
  }

  function showRowKind(tr) {
    tr.querySelector(".share-cell").hidden = kind() !== "results";
    tr.querySelector(".source-cell").hidden = kind() !== "comparison";
  }

  function addRow(values, focus) {
    var tr = rowTemplate.content.firstElementChild.cloneNode(true);
    values = values || {};
    tr.querySelector("[name=label]").value = values.label || "";
    tr.querySelector("[name=count]").value = values.count == null ? "" : values.count;
    tr.querySelector("[name=share]").value = values.share == null || values.count != null ? "" : values.share;
    tr.querySelector("[name=row_source]").value = values.source || "";
    rowsBody.appendChild(tr);
    showRowKind(tr);
    renumber();
    if (focus) tr.querySelector("[name=label]").focus();
    showKind();
    return tr;
  }

  function renumber() {
    Array.prototype.forEach.call(rowsBody.rows, function (tr, n) {
      tr.querySelectorAll("input").forEach(function (input) {
        input.setAttribute("aria-label", input.dataset.label + ", row " + (n + 1));
      });
      tr.querySelector(".remove-row").setAttribute("aria-label", "Remove row " + (n + 1));
    });
  }

  function number(text) {
    var clean = String(text).replace(/[\s,\u00a0\u202f]/g, "");
    return clean === "" ? null : Number(clean);
  }

  function body() {
    var data = { kind: kind(), title: form.elements.title.value, unit: form.elements.unit.value,
      counted: form.elements.counted.value, source: form.elements.source.value, rows: [] };
    Array.prototype.forEach.call(rowsBody.rows, function (tr) {
      var row = { label: tr.querySelector("[name=label]").value };
      var count = number(tr.querySelector("[name=count]").value);
      var share = number(tr.querySelector("[name=share]").value.replace("%", ""));
      if (count !== null) row.count = count;
      if (share !== null && kind() === "results") row.share = share;
      var source = tr.querySelector("[name=row_source]").value.trim();
      if (source && kind() === "comparison") row.source = source;
      if (row.label.trim() || count !== null || share !== null) data.rows.push(row);
    });
    if (form.elements.key_event.checked) data.key_event = true;
    if (form.elements.notify && form.elements.notify.checked) data.notify = true;
    return data;
  }

  function open(block) {
    editing = block || null;
    confirmed = null;
    form.hidden = false;
    form.reset();
    rowsBody.innerHTML = "";
    form.querySelectorAll("input[name=kind]").forEach(function (radio) { radio.disabled = !!block; });
    form.querySelector(".correction-field").hidden = !block;
    form.querySelector("[data-figures=delete]").hidden = !block;
    form.querySelector("[data-figures=publish]").textContent = block ? "Publish new figures" : "Publish figures";
    status.textContent = "";
    if (block) {
      form.querySelector('input[name=kind][value="' + block.kind + '"]').checked = true;
      ["title", "unit", "counted", "source"].forEach(function (name) { form.elements[name].value = block[name] || ""; });
      form.elements.key_event.checked = block.key_event;
      block.rows.forEach(function (row) { addRow(row); });
    } else {
      addRow();
      addRow();
    }
    showKind();
    form.elements.title.focus();
  }

  function close() {
    form.hidden = true;
    editing = null;
  }

  function publish() {
    var data = body();
    status.textContent = "Checking…";
    request("POST", api + "/check", Object.assign({}, data, { notify: undefined, key_event: undefined })).then(function (response) {
      if (!response.ok) return problem(response).then(function (text) { status.textContent = "Not published. " + plainly(text); });
      return response.json().then(function (checked) {
        var seen = JSON.stringify(data);
        if (checked.warnings.length && confirmed !== seen) {
          confirmed = seen;
          status.textContent = checked.warnings.join(" ") + " Publish again to confirm.";
          form.querySelector("[data-figures=publish]").textContent = "Publish anyway";
          return;
        }
        return save(data);
      });
    }, function () { status.textContent = "Not published: no connection. Try again when you are back online."; });
  }

  function save(data) {
    status.textContent = "Publishing…";
    var sending;
    if (editing) {
      var correction = form.elements.correction.value.trim();
      var changes = Object.assign({}, data);
      delete changes.kind;
      if (correction) changes.correction = correction;
      changes.key_event = form.elements.key_event.checked;
      sending = request("PATCH", api + "/" + editing.id, changes, { "If-Match": editing.etag });
    } else {
      sending = request("POST", api, data);
    }
    return sending.then(function (response) {
      if (response.status === 412) {
        status.textContent = "Someone else changed these figures since you opened them. Close and open them again to see theirs.";
        return;
      }
      if (!response.ok) return problem(response).then(function (text) { status.textContent = "Not published. " + plainly(text); });
      return response.json().then(function (block) {
        show(block);
        close();
        list.querySelector('[data-block="' + block.id + '"] button').focus();
      });
    });
  }

  // The API's words, as the desk says them.
  function plainly(text) {
    return text.replace(/^[a-z_.0-9]+: /, "").replace(/^rows\.\d+\.\w+: /, "")
      .replace(/Input should be greater than or equal to 0/, "A count cannot be negative.")
      .replace(/Input should be less than or equal to 100/, "A share is at most 100 %.")
      .replace(/Input should be a valid integer.*/, "Counts are whole numbers.");
  }

  function show(block) {
    blocks[block.id] = block;
    var item = list.querySelector('[data-block="' + block.id + '"]');
    if (!item) {
      item = document.createElement("li");
      item.dataset.block = block.id;
      item.innerHTML = '<button type="button" class="link-button"></button> <span class="hint"></span>';
      list.appendChild(item);
    }
    item.querySelector("button").textContent = block.title;
    item.querySelector(".hint").textContent = block.kind + ", " + block.rows.length + " figure" + (block.rows.length === 1 ? "" : "s") +
      ", version " + block.revision;
    list.hidden = false;
  }

  function removeBlock(id) {
    delete blocks[id];
    var item = list.querySelector('[data-block="' + id + '"]');
    if (item) item.remove();
  }

  list.addEventListener("click", function (event) {
    var item = event.target.closest("[data-block]");
    if (item && event.target.tagName === "BUTTON") open(blocks[item.dataset.block]);
  });
  panel.querySelector("[data-figures=new]").addEventListener("click", function () { open(null); });
  form.addEventListener("change", function (event) { if (event.target.name === "kind") showKind(); });
  form.addEventListener("input", function () {
    confirmed = null;
    form.querySelector("[data-figures=publish]").textContent = editing ? "Publish new figures" : "Publish figures";
  });
  form.querySelector(".add-row").addEventListener("click", function () { addRow(null, true); });
  rowsBody.addEventListener("click", function (event) {
    if (!event.target.classList.contains("remove-row")) return;
    var tr = event.target.closest("tr");
    var next = tr.nextElementSibling || tr.previousElementSibling;
    tr.remove();
    renumber();
    showKind();
    if (next) next.querySelector("[name=label]").focus();
    else form.querySelector(".add-row").focus();
  });
  rowsBody.addEventListener("keydown", function (event) {
    // Enter in a row's last visible cell opens the next row, as in a spreadsheet.
    if (event.key !== "Enter" || event.ctrlKey || event.metaKey || event.target.tagName !== "INPUT") return;
    event.preventDefault();
    var tr = event.target.closest("tr");
    var cells = Array.prototype.filter.call(tr.querySelectorAll("input"), function (input) { return !input.closest("[hidden]"); });
    if (event.target !== cells[cells.length - 1]) return cells[cells.indexOf(event.target) + 1].focus();
    if (tr.nextElementSibling) tr.nextElementSibling.querySelector("[name=label]").focus();
    else if (kind() !== "counter") addRow(null, true);
  });
  form.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); publish(); }
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); publish(); });
  form.querySelector("[data-figures=cancel]").addEventListener("click", close);
  form.querySelector("[data-figures=delete]").addEventListener("click", function () {
    if (!editing) return close();
    request("DELETE", api + "/" + editing.id, undefined, { "If-Match": editing.etag }).then(function (response) {
      if (!response.ok) return problem(response).then(function (text) { status.textContent = "Not deleted. " + plainly(text); });
      removeBlock(editing.id);
      close();
    });
  });

  // Others' changes arrive on the desk's own stream (newsroom.js dispatches them).
  document.addEventListener("dateline:block", function (event) {
    var data = event.detail;
    if (data.deleted_at) removeBlock(data.id);
    else show(data);
  });

  fetch(api, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (page) {
    page.blocks.forEach(show);
  });
})();
