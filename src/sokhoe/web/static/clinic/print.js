// The print view's button: the browser's print dialog (Ctrl+P does the same).
document.getElementById("print-now")?.addEventListener("click", () => window.print());
