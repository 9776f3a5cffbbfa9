// Progressive enhancement only: every page works without this file.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("focusin", (event) => {
  if (event.target.classList && event.target.classList.contains("copy-field")) {
    event.target.select();
  }
});
// The zip form: count the ticked files, and keep the button off until there is one.
function updateZipForm(form) {
  const ticked = form.querySelectorAll('input[name="file"]:checked').length;
  const max = Number(form.dataset.max || 100);
  const button = form.querySelector("[data-zip-submit]");
  const count = form.querySelector("[data-zip-count]");
  button.disabled = ticked === 0 || ticked > max;
  if (ticked > max) {
    count.textContent = `${ticked} files ticked; one zip holds at most ${max}.`;
  } else if (ticked > 0) {
    count.textContent = `${ticked} file${ticked === 1 ? "" : "s"} selected.`;
  }
}
document.addEventListener("change", (event) => {
  const form = event.target.closest && event.target.closest("form.zip-form");
  if (form) updateZipForm(form);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.zip-form").forEach(updateZipForm);
});

// The bell: the unread count and the latest notifications, kept live over server-sent
// events. Without JavaScript the bell is a link to /notifications.
function bellItem(n) {
  const item = document.createElement("li");
  item.className = n.read ? "" : "unread";
  const link = document.createElement("a");
  link.href = n.link ? `/notifications/open/${encodeURIComponent(n.id)}` : "/notifications";
  const title = document.createElement("strong");
  title.textContent = n.title;
  const body = document.createElement("span");
  body.textContent = n.body;
  link.append(title, body);
  item.append(link);
  return item;
}

function setupBell(bell) {
  const count = bell.querySelector("[data-bell-count]");
  const list = bell.querySelector("[data-bell-list]");
  const panel = bell.querySelector("[data-bell-panel]");
  let unread = 0;
  const show = () => {
    count.textContent = unread > 99 ? "99+" : String(unread);
    count.hidden = unread === 0;
    bell.dataset.unread = String(unread);
  };
  const render = (items) => {
    list.replaceChildren(...items.map(bellItem));
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = "Nothing yet.";
      list.append(empty);
    }
  };
  fetch("/api/v1/notifications?limit=5", { credentials: "same-origin" })
    .then((answer) => (answer.ok ? answer.json() : null))
    .then((page) => {
      if (!page) return;
      unread = page.unread_count;
      show();
      render(page.items);
    })
    .catch(() => {});
  bell.querySelector("[data-bell-toggle]").addEventListener("click", (event) => {
    event.preventDefault();
    panel.hidden = !panel.hidden;
  });
  document.addEventListener("click", (event) => {
    if (!bell.contains(event.target)) panel.hidden = true;
  });
  if (!window.EventSource) return;
  const stream = new EventSource("/api/v1/notifications/stream");
  const arrived = (event) => {
    const n = JSON.parse(event.data);
    unread += 1;
    show();
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.prepend(bellItem(n));
    while (list.children.length > 5) list.lastElementChild.remove();
    document.dispatchEvent(new CustomEvent("portal:notification", { detail: n }));
    bell.classList.add("bell-ring");
    setTimeout(() => bell.classList.remove("bell-ring"), 1200);
  };
  // Each event is named by its kind; the page lists the kinds (data-kinds), from the server.
  JSON.parse(bell.dataset.kinds || "[]").forEach((kind) => stream.addEventListener(kind, arrived));
  stream.addEventListener("ready", () => { bell.dataset.live = "1"; });
  window.addEventListener("pagehide", () => stream.close());
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-bell]").forEach(setupBell);
});

// A support request's page: what the support team writes appears without a reload. The
// bell hears the notification; the page fetches its changing parts and swaps them in.
async function refreshIssue(issueId) {
  const answer = await fetch(`/support/${encodeURIComponent(issueId)}/live`,
                             { credentials: "same-origin" });
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  fresh.querySelectorAll("[data-live-part]").forEach((part) => {
    const old = document.getElementById(part.id);
    if (old) old.replaceWith(document.importNode(part, true));
  });
}

function csrfOf(form) {
  const field = form.querySelector('input[name="csrf_token"]');
  return field ? field.value : "";
}

function problemText(xhr) {
  try {
    const problem = JSON.parse(xhr.responseText);
    return problem.detail || problem.title || `Upload failed (${xhr.status}).`;
  } catch (error) {
    return `Upload failed (${xhr.status || "no answer"}).`;
  }
}

// One file to a request through the API, reporting progress; resolves when stored.
function uploadFile(issueId, file, csrf, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/issues/${encodeURIComponent(issueId)}/attachments`);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100));
    });
    xhr.addEventListener("load", () => (xhr.status === 201 ? resolve() : reject(new Error(problemText(xhr)))));
    xhr.addEventListener("error", () => reject(new Error("The connection broke off; try again.")));
    const body = new FormData();
    body.append("file", file, file.name);
    xhr.send(body);
  });
}

function tooBig(file, form) {
  const max = Number(form.dataset.maxBytes || 0);
  return max && file.size > max ? `${file.name} is larger than ${Math.round(max / 1048576)} MiB.` : "";
}

function setupUploadForm(form, issueId) {
  const progress = form.querySelector("[data-upload-progress]");
  const status = form.querySelector("[data-upload-status]");
  const input = form.querySelector('input[type="file"]');
  const button = form.querySelector('button[type="submit"]');
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    const refused = tooBig(file, form);
    if (refused) { status.textContent = refused; return; }
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    status.textContent = `Uploading ${file.name}…`;
    try {
      await uploadFile(issueId, file, csrfOf(form), (percent) => {
        progress.value = percent;
        status.textContent = `Uploading ${file.name}: ${percent}%`;
      });
      status.textContent = `${file.name} is attached.`;
      form.reset();
      await refreshIssue(issueId);
    } catch (error) {
      status.textContent = error.message;
    } finally {
      button.disabled = false;
      progress.hidden = true;
    }
  });
}

// The new request form: with JavaScript it takes files too, uploaded with progress once
// the request is open.
function setupNewRequest(form) {
  const field = form.querySelector("[data-upload-field]");
  const hint = form.querySelector("[data-upload-hint]");
  const list = form.querySelector("[data-uploads]");
  const input = field.querySelector('input[type="file"]');
  field.hidden = false;
  hint.hidden = true;
  form.addEventListener("submit", async (event) => {
    const files = Array.from(input.files);
    if (!files.length) return; // a plain submit
    event.preventDefault();
    const refused = files.map((file) => tooBig(file, form)).filter(Boolean);
    if (refused.length) { list.replaceChildren(...refused.map(lineOf)); return; }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    const fields = new URLSearchParams();
    new FormData(form).forEach((value, key) => { if (typeof value === "string") fields.append(key, value); });
    const answer = await fetch(form.action, { method: "POST", body: fields, credentials: "same-origin" });
    const opened = answer.redirected && /\/support\/[^/?]+\?opened=1$/.test(answer.url);
    if (!opened) {
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const error = page.querySelector(".alert-error");
      list.replaceChildren(lineOf(error ? error.textContent : `The request was not opened (${answer.status}).`));
      button.disabled = false;
      return;
    }
    const issueId = new URL(answer.url).pathname.split("/")[2];
    for (const file of files) {
      const line = lineOf(`${file.name}: 0%`);
      const bar = document.createElement("progress");
      bar.max = 100;
      line.append(" ", bar);
      list.append(line);
      try {
        await uploadFile(issueId, file, csrfOf(form), (percent) => {
          bar.value = percent;
          line.firstChild.textContent = `${file.name}: ${percent}%`;
        });
        line.firstChild.textContent = `${file.name}: attached`;
      } catch (error) {
        line.firstChild.textContent = `${file.name}: ${error.message}`;
      }
    }
    window.location.assign(answer.url);
  });
}

function lineOf(text) {
  const line = document.createElement("li");
  line.append(document.createTextNode(text));
  return line;
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("[data-issue-live]");
  if (live) {
    const issueId = live.dataset.issueLive;
    document.addEventListener("portal:notification", (event) => {
      if (event.detail && event.detail.link === `/support/${issueId}`) refreshIssue(issueId);
    });
    document.querySelectorAll("[data-upload-form]").forEach((form) => setupUploadForm(form, issueId));
  }
  document.querySelectorAll("[data-new-request]").forEach(setupNewRequest);
});

// A table wider than its card scrolls inside it (phones): it becomes a Tab stop, so the
// keyboard can scroll it too; one that fits is not.
function reachableScrollers() {
  document.querySelectorAll("main table").forEach((table) => {
    if (table.scrollWidth > table.clientWidth + 1) table.setAttribute("tabindex", "0");
    else table.removeAttribute("tabindex");
  });
}
document.addEventListener("DOMContentLoaded", reachableScrollers);
window.addEventListener("resize", reachableScrollers);

// Copy buttons (a file's SHA-256): shown only where JavaScript can copy; the text beside
// them can always be selected by hand.
document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) return;
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  });
});
