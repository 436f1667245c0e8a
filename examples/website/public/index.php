<?php
/*
 * /  GET: the sign-up form.  POST: the sign-up (op "subscribe"), answered
 * with the state page: pending, duplicate or error.  With the daemon's
 * [antibot] pow = on the form carries a challenge that public/antibot.js
 * solves in the browser before it submits.
 */
declare(strict_types=1);

require __DIR__ . '/../lib/site.php';
site_boot('');

$method = site_method();
if ($method === 'GET') {
    render_page(t('form_title'), '<section class="card" aria-labelledby="title">' . "\n"
        . '<h1 id="title">' . h(t('form_title')) . "</h1>\n"
        . '<p class="lead">' . h(t('form_intro')) . "</p>\n"
        . signup_form() . "\n"
        . '<p class="archive-link"><a href="' . h(site_url('archive', site_lang() === 'en' ? ['lang' => 'en'] : [])) . '">'
        . h(t('archive_link')) . "</a></p>\n</section>", 200, [], true);
}
if ($method !== 'POST') {
    error_page(['error' => 'method']);
}

$values = [
    'email' => trim(param($_POST, 'email')),
    'name' => trim(param($_POST, 'name')),
    'consent' => param($_POST, 'consent') === 'yes',
];

/*
 * The honeypot: a field people never see and bots like to fill.  A filled
 * one is answered exactly like a successful sign-up, so the bot learns
 * nothing, and nothing is sent.
 */
if (param($_POST, 'website') !== '') {
    error_log('website: sign-up with a filled honeypot dropped');
    state_page('pending', t('pending_title'), t('pending_text'), '<p>' . h(t('pending_hint')) . '</p>');
}

$errors = [];
if ($values['email'] === '') {
    $errors['email'] = t('err_email_missing');
} elseif (!utf8_clean($values['email'])) {
    $errors['email'] = t('err_email_bad');
}
if ($values['name'] !== '' && (!utf8_clean($values['name']) || strlen($values['name']) > SITE_NAME_MAX_BYTES)) {
    $errors['name'] = t('err_name_bad');
}
if (!$values['consent']) {
    $errors['consent'] = t('err_consent');
}
if ($errors) {
    if (isset($errors['email']) && $values['email'] !== '' && !utf8_clean($values['email'])) {
        $values['email'] = '';      /* do not echo bytes that are not text */
    }
    if (isset($errors['name']) && !utf8_clean($values['name'])) {
        $values['name'] = '';
    }
    render_page(t('form_title'), '<section class="card" aria-labelledby="title">' . "\n"
        . '<h1 id="title">' . h(t('form_title')) . "</h1>\n"
        . signup_form($values, $errors) . "\n</section>", 400);
}

$lang = site_lang();
$answer = newsletterd_request([
    'op' => 'subscribe',
    'email' => $values['email'],
    'name' => $values['name'] !== '' ? $values['name'] : null,
    'lang' => $lang,
    'ip' => visitor_ip(),
    'user_agent' => visitor_agent(),
    'consent_text' => t('consent_text'),
    'consent_version' => t('consent_version'),
    /* the solved challenge of public/antibot.js ([antibot] pow = on) */
    'altcha' => param($_POST, 'altcha') !== '' ? param($_POST, 'altcha') : null,
]);

switch ($answer['state']) {
    case 'pending':
        state_page('pending', t('pending_title'), t('pending_text'), '<p>' . h(t('pending_hint')) . '</p>');
        // no break: state_page() does not return
    case 'duplicate':
        state_page('duplicate', t('duplicate_title'), t('duplicate_text'));
        // no break
    case 'error':
        if ($answer['error'] === 'invalid_email') {
            /* the form again, with the address to correct */
            error_page($answer, signup_form($values, ['email' => t('err_email_check')], false));
        }
        if ($answer['error'] === 'challenge_failed' || $answer['error'] === 'challenge_required') {
            /* the form again, filled in, with a new challenge */
            error_page($answer, signup_form($values, [], false));
        }
        error_page($answer);
        // no break
    default:
        error_log('website: subscribe answered with state ' . $answer['state']);
        error_page(['error' => 'internal']);
}
