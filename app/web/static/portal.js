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
