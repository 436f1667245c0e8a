<?php
/*
 * /unsubscribe?token=T  — the link in every newsletter (and its
 * List-Unsubscribe header).
 *
 * GET shows a button and changes nothing (link scanners again).
 * POST unsubscribes (op "unsubscribe"): from the button, with the token in
 * a hidden field, or from a mail provider's RFC 8058 one-click request,
 * which POSTs "List-Unsubscribe=One-Click" to the URL of the header: the
 * token is then in the query string, there are no cookies, and the answer
 * is a plain 200 with the state page, no redirect.
 */
declare(strict_types=1);

require __DIR__ . '/../../lib/site.php';
site_boot('unsubscribe');

$method = site_method();
if ($method !== 'GET' && $method !== 'POST') {
    error_page(['error' => 'method']);
}
$lang = site_lang();
$token = site_token($method === 'POST' && param($_POST, 'token') !== '' ? param($_POST, 'token') : param($_GET, 'token'));
if ($token === null) {
    error_page(['error' => 'no_token']);
}
$keep = ['token' => $token];

if ($method === 'GET') {
    $h = 'h';
    $action = h(site_url('unsubscribe', ['token' => $token]));
    $t = h($token);
    render_page(t('unsubscribe_title'), <<<HTML
<section class="card" aria-labelledby="title">
<h1 id="title">{$h(t('unsubscribe_title'))}</h1>
<p class="lead">{$h(t('unsubscribe_text'))}</p>
<form method="post" action="{$action}" class="unsubscribe">
<input type="hidden" name="token" value="{$t}">
<input type="hidden" name="lang" value="{$lang}">
<p class="actions"><button type="submit" class="button" id="unsubscribe-button">{$h(t('unsubscribe_button'))}</button></p>
</form>
</section>
HTML, 200, $keep);
}

/*
 * RFC 8058: the body is "List-Unsubscribe=One-Click", form-encoded (PHP
 * parses it into $_POST) or, from a less careful client, sent with another
 * content type (then only the raw body has it).
 */
$oneClick = param($_POST, 'List-Unsubscribe') === 'One-Click'
    || trim((string)file_get_contents('php://input', false, null, 0, 1024)) === 'List-Unsubscribe=One-Click';

$answer = newsletterd_request([
    'op' => 'unsubscribe',
    'token' => $token,
    'lang' => $lang,
    'ip' => visitor_ip(),
    'user_agent' => visitor_agent(),
]);
if ($oneClick) {
    error_log('website: one-click unsubscribe answered ' . $answer['state']);
}

if ($answer['state'] === 'unsubscribed') {
    state_page('unsubscribed', t('unsubscribed_title'), t('unsubscribed_text'),
        link_button(site_form_url(), t('subscribe_again'), true), 200, $keep);
}
if ($answer['state'] !== 'error') {
    error_log('website: unsubscribe answered with state ' . $answer['state']);
    $answer = ['error' => 'internal'];
}
error_page($answer, '', $keep);
