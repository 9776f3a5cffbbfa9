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
