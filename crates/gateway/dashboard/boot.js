// A plain script that runs even when the page's modules cannot load (an old browser, a proxy
// that mangles them): after a few seconds without the dashboard it says so, instead of leaving
// "Loading…" on screen.
setTimeout(function () {
  if (window.microDashboard) return;
  var view = document.getElementById("view");
  var p = document.createElement("p");
  p.className = "error";
  p.setAttribute("role", "alert");
  p.textContent = "Error: the dashboard's scripts did not start in this browser. " +
    "The node still answers: its API is at /api/ (try /api/health).";
  view.replaceChildren(p);
}, 5000);
