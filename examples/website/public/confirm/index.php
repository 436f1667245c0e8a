<?php
/*
 * /confirm?token=T  — the link in the confirmation mail.
 *
 * GET only looks (op "check") and, for a sign-up waiting for its
 * confirmation, shows a button.  Mail scanners and link previews fetch
 * links; they do not press buttons, so they confirm nothing.
 * POST (the button; the token in a hidden field) confirms (op "confirm").
 */
declare(strict_types=1);

require __DIR__ . '/../../lib/site.php';
site_boot('confirm');

$method = site_method();
if ($method !== 'GET' && $method !== 'POST') {
    error_page(['error' => 'method']);
}
$lang = site_lang();
$token = site_token($method === 'POST' && param($_POST, 'token') !== '' ? param($_POST, 'token') : param($_GET, 'token'));
if ($token === null) {
    error_page(['error' => 'no_token']);
}
$keep = ['token' => $token];   /* for the language switch */

if ($method === 'GET') {
    $answer = newsletterd_request(['op' => 'check', 'token' => $token, 'lang' => $lang]);
} else {
    $answer = newsletterd_request([
        'op' => 'confirm',
        'token' => $token,
        'lang' => $lang,
        'ip' => visitor_ip(),
        'user_agent' => visitor_agent(),
    ]);
}

switch ($answer['state']) {
    case 'pending':
        if ($method === 'GET') {
            $h = 'h';
            $action = h(site_url('confirm'));
            $t = h($token);
            $form = <<<HTML
<form method="post" action="{$action}" class="confirm">
<input type="hidden" name="token" value="{$t}">
<input type="hidden" name="lang" value="{$lang}">
<p class="actions"><button type="submit" class="button" id="confirm-button">{$h(t('confirm_button'))}</button></p>
</form>
<p class="note">{$h(t('confirm_hint'))}</p>

HTML;
            state_page('pending', t('confirm_title'), t('confirm_text'), $form, 200, $keep);
        }
        break;      /* "confirm" never answers pending */
    case 'confirmed':
        state_page('confirmed', t($method === 'GET' ? 'confirmed_again_title' : 'confirmed_title'),
            t('confirmed_text'), '', 200, $keep);
        // no break
    case 'expired':
        state_page('expired', t('expired_title'), t('expired_text'),
            link_button(site_form_url(), t('signup_again')), 200, $keep);
        // no break
    case 'error':
        error_page($answer, '', $keep);
}
error_log('website: ' . ($method === 'GET' ? 'check' : 'confirm') . ' answered with state ' . $answer['state']);
error_page(['error' => 'internal'], '', $keep);
