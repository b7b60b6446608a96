// One-time secrets (a new token, a generated password, a webhook secret) are shown once: a
// "Copy" button beside each (data-copy: the id of the element whose text it copies).
document.addEventListener("click", (evt) => {
  const button = evt.target.closest && evt.target.closest("[data-copy]");
  const source = button && document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(
    () => { button.textContent = "Copied"; },
    () => { button.textContent = "Copy failed: select the text"; });
});
