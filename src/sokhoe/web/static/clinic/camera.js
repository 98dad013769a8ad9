// The desk's phone-camera scanner: reads the chip ID card's QR with the camera and puts its
// text into the check-in box, as a USB scanner would (jsQR, served from our own files).
// Only where a camera exists and the page is on a secure origin (https or localhost).
(function () {
  "use strict";
  var button = document.getElementById("camera-button");
  var box = document.getElementById("q");
  var video = document.getElementById("camera-video");
  var status = document.getElementById("camera-status");
  if (!button || !box || !video) { return; }

  // The decoder is loaded on first use only: it weighs more than the rest of the page.
  var loading = null;
  window.sokhoeLoadDecoder = function () {
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = "/static/vendor/jsQR.js";
        script.onload = resolve; script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading;
  };
  // Decode one frame; exposed for the tests, which draw a QR into a canvas.
  window.sokhoeDecodeQr = function (imageData) {
    var found = window.jsQR(imageData.data, imageData.width, imageData.height, {inversionAttempts: "dontInvert"});
    return found ? found.data : null;
  };

  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { return; }
  button.hidden = false;
  var stream = null;
  var canvas = document.createElement("canvas");

  function stop() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.hidden = true;
    button.setAttribute("aria-pressed", "false");
  }

  function frame() {
    if (!stream) { return; }
    if (video.readyState === video.HAVE_ENOUGH_DATA) {
      canvas.width = video.videoWidth; canvas.height = video.videoHeight;
      var ctx = canvas.getContext("2d", {willReadFrequently: true});
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      var text = window.sokhoeDecodeQr(ctx.getImageData(0, 0, canvas.width, canvas.height));
      if (text) {
        stop();
        box.value = text;
        if (status) { status.textContent = status.getAttribute("data-read"); }
        box.form.requestSubmit();
        return;
      }
    }
    requestAnimationFrame(frame);
  }

  button.addEventListener("click", function () {
    if (stream) { stop(); return; }
    window.sokhoeLoadDecoder().then(function () {
      return navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
    }).then(function (s) {
      stream = s; video.srcObject = s; video.hidden = false;
      button.setAttribute("aria-pressed", "true");
      video.play(); requestAnimationFrame(frame);
    }).catch(function () {
      if (status) { status.textContent = status.getAttribute("data-denied"); }
    });
  });
})();
