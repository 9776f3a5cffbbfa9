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
