// Passkey ceremonies of the pages (W3C WebAuthn Level 3), through @simplewebauthn/browser.
// A button marked data-passkey="create" or "get" asks its data-options route for the
// options (a POST with the page's CSRF token), lets the browser create or use a passkey,
// writes the credential's JSON into the hidden "credential" field of the form named by
// data-form and submits that form: the server answers with a page or a redirect as for
// any other form. Only the ceremonies need this file.
(function () {
  "use strict";

  function csrfToken() {
    var field = document.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  function say(button, text) {
    var out = document.getElementById(button.dataset.status);
    if (out) out.textContent = text;
  }

  function fetchOptions(url) {
    var body = new URLSearchParams();
    body.set("csrf_token", csrfToken());
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("options: HTTP " + response.status);
      return response.json();
    });
  }

  function run(button) {
    var lib = window.SimpleWebAuthnBrowser;
    if (!lib || !lib.browserSupportsWebAuthn()) {
      say(button, button.dataset.unsupported);
      return;
    }
    var form = document.getElementById(button.dataset.form);
    button.disabled = true;
    say(button, "");
    fetchOptions(button.dataset.options)
      .then(function (answer) {
        if (answer.redirect) {
          window.location.assign(answer.redirect);
          return null;
        }
        if (answer.challenge_id && form.elements.challenge_id) {
          form.elements.challenge_id.value = answer.challenge_id;
        }
        var ceremony = button.dataset.passkey === "create"
          ? lib.startRegistration({ optionsJSON: answer.public_key })
          : lib.startAuthentication({ optionsJSON: answer.public_key });
        return ceremony.then(function (credential) {
          form.elements.credential.value = JSON.stringify(credential);
          form.submit();
        });
      })
      .catch(function (error) {
        button.disabled = false;
        say(button, button.dataset.error);
        if (window.console) window.console.warn("passkey:", error);
      });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var button = target instanceof Element ? target.closest("[data-passkey]") : null;
    if (!button) return;
    event.preventDefault();
    run(button);
  });
})();
