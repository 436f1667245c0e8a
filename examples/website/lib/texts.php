<?php
/*
 * Every text of the site, German and English.  Edit here to adapt the pages
 * to your organisation.  When you change the consent wording, change
 * 'consent_version' too: each sign-up's consent record stores the wording
 * and this version.
 */
declare(strict_types=1);

return [
    'de' => [
        'site_name' => 'Newsletter',
        'skip' => 'Zum Inhalt springen',
        'lang_nav' => 'Sprache',
        'other_lang' => 'English',
        'footer' => 'Fragen zum Newsletter? Schreiben Sie uns an newsletter@example.org.',

        'form_title' => 'Newsletter abonnieren',
        'form_intro' => 'Tragen Sie Ihre E-Mail-Adresse ein. Wir schicken Ihnen dann eine E-Mail mit einem Link, mit dem Sie die Anmeldung bestätigen. Erst danach erhalten Sie den Newsletter.',
        'email_label' => 'E-Mail-Adresse',
        'email_hint' => 'zum Beispiel name@example.org',
        'name_label' => 'Name',
        'optional' => '(freiwillig)',
        'consent_legend' => 'Einwilligung',
        'consent_text' => 'Ich möchte den Newsletter per E-Mail erhalten. Meine Einwilligung kann ich jederzeit mit dem Abmeldelink in jeder Ausgabe widerrufen.',
        'consent_version' => 'v1-de',
        'honeypot_label' => 'Dieses Feld bitte leer lassen',
        'submit' => 'Anmelden',
        'privacy' => 'Wir verwenden Ihre Adresse nur für den Newsletter. Als Nachweis Ihrer Einwilligung speichern wir Zeitpunkt, IP-Adresse und Browserkennung der Anmeldung und der Bestätigung.',
        'problems' => 'Bitte korrigieren Sie die markierten Angaben:',
        'err_email_missing' => 'Bitte geben Sie Ihre E-Mail-Adresse ein.',
        'err_email_bad' => 'Diese E-Mail-Adresse können wir nicht verwenden. Bitte prüfen Sie die Schreibweise.',
        'err_email_check' => 'Bitte prüfen Sie diese Adresse.',
        'err_name_bad' => 'Der Name ist zu lang oder enthält unzulässige Zeichen.',
        'err_consent' => 'Bitte setzen Sie das Häkchen bei der Einwilligung, damit wir Ihnen den Newsletter schicken dürfen.',

        'pending_title' => 'Fast geschafft: Bitte sehen Sie in Ihr Postfach',
        'pending_text' => 'Wir haben Ihnen eine E-Mail mit einem Bestätigungslink geschickt. Öffnen Sie den Link und bestätigen Sie die Anmeldung – erst dann erhalten Sie den Newsletter.',
        'pending_hint' => 'Keine E-Mail angekommen? Sehen Sie bitte auch im Spam-Ordner nach. Später können Sie sich einfach noch einmal anmelden, dann schicken wir den Link erneut.',

        'confirm_title' => 'Anmeldung bestätigen',
        'confirm_text' => 'Bitte bestätigen Sie mit dem Knopf, dass Sie den Newsletter erhalten möchten.',
        'confirm_button' => 'Ja, Newsletter abonnieren',
        'confirm_hint' => 'Sie haben sich nicht angemeldet? Dann schließen Sie diese Seite einfach. Ohne Bestätigung erhalten Sie keine weiteren E-Mails von uns.',

        'confirmed_title' => 'Anmeldung bestätigt',
        'confirmed_again_title' => 'Anmeldung bereits bestätigt',
        'confirmed_text' => 'Vielen Dank! Ab jetzt erhalten Sie unseren Newsletter.',

        'expired_title' => 'Der Link ist abgelaufen',
        'expired_text' => 'Dieser Bestätigungslink gilt nicht mehr, weil die Anmeldung nicht rechtzeitig bestätigt wurde. Melden Sie sich bitte noch einmal an; Sie erhalten dann eine neue E-Mail.',
        'signup_again' => 'Erneut anmelden',

        'duplicate_title' => 'Sie sind bereits angemeldet',
        'duplicate_text' => 'Diese E-Mail-Adresse erhält unseren Newsletter schon. Sie müssen nichts weiter tun.',

        'unsubscribe_title' => 'Newsletter abbestellen',
        'unsubscribe_text' => 'Möchten Sie unseren Newsletter nicht mehr erhalten? Dann bestätigen Sie die Abmeldung mit dem Knopf.',
        'unsubscribe_button' => 'Newsletter abbestellen',

        'unsubscribed_title' => 'Sie sind abgemeldet',
        'unsubscribed_text' => 'Sie erhalten unseren Newsletter nicht mehr. War das ein Versehen? Sie können sich jederzeit wieder anmelden.',
        'subscribe_again' => 'Wieder anmelden',

        'error_title' => 'Das hat leider nicht geklappt',
        'error_unavailable' => 'Unser Newsletter-Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in ein paar Minuten noch einmal.',
        'error_rate_limited' => 'Gerade kommen zu viele Anfragen auf einmal. Bitte versuchen Sie es in ein paar Minuten noch einmal.',
        'error_unknown_token' => 'Dieser Link ist ungültig oder nicht mehr bekannt. Bitte prüfen Sie, ob Sie ihn vollständig aus der E-Mail übernommen haben.',
        'error_no_token' => 'Dieser Link ist unvollständig. Bitte öffnen Sie ihn direkt aus der E-Mail oder kopieren Sie ihn vollständig in die Adresszeile.',
        'error_invalid_email' => 'Diese E-Mail-Adresse können wir nicht verwenden. Bitte prüfen Sie die Schreibweise und versuchen Sie es noch einmal.',
        'error_other' => 'Ihre Anfrage konnte nicht bearbeitet werden. Bitte versuchen Sie es noch einmal.',
        'error_method' => 'Diese Seite kann so nicht aufgerufen werden.',
        'back_to_form' => 'Zurück zur Anmeldung',
        'try_again' => 'Noch einmal versuchen',

        'archive_link' => 'Unser Newsletter-Archiv',
        'archive_title' => 'Newsletter-Archiv',
        'archive_intro' => 'Alle bisherigen Ausgaben unseres Newsletters zum Nachlesen, die neueste zuerst.',
        'archive_empty' => 'Noch ist keine Ausgabe erschienen.',
        'archive_older' => 'Ältere Ausgaben',
        'archive_newer' => 'Zu den neuesten Ausgaben',
        'archive_back' => 'Zurück zum Archiv',
        'archive_sent' => 'Verschickt am',
        'archive_frame' => 'Die Ausgabe, wie sie per E-Mail verschickt wurde',
        'archive_feed' => 'Feed abonnieren (Atom)',
        'archive_unknown' => 'Diese Ausgabe gibt es in unserem Archiv nicht.',
        'archive_subscribe' => 'Newsletter abonnieren',
        'date_format' => 'd.m.Y',
    ],

    'en' => [
        'site_name' => 'Newsletter',
        'skip' => 'Skip to content',
        'lang_nav' => 'Language',
        'other_lang' => 'Deutsch',
        'footer' => 'Questions about the newsletter? Write to us at newsletter@example.org.',

        'form_title' => 'Subscribe to our newsletter',
        'form_intro' => 'Enter your email address. We will send you an email with a link to confirm your sign-up; only then will you receive the newsletter.',
        'email_label' => 'Email address',
        'email_hint' => 'for example name@example.org',
        'name_label' => 'Name',
        'optional' => '(optional)',
        'consent_legend' => 'Consent',
        'consent_text' => 'I would like to receive the newsletter by email. I can withdraw my consent at any time with the unsubscribe link in every issue.',
        'consent_version' => 'v1-en',
        'honeypot_label' => 'Please leave this field empty',
        'submit' => 'Sign up',
        'privacy' => 'We use your address for the newsletter only. As proof of your consent we keep the time, IP address and browser identification of your sign-up and of your confirmation.',
        'problems' => 'Please correct the marked entries:',
        'err_email_missing' => 'Please enter your email address.',
        'err_email_bad' => 'We cannot use this email address. Please check its spelling.',
        'err_email_check' => 'Please check this address.',
        'err_name_bad' => 'The name is too long or contains characters we cannot accept.',
        'err_consent' => 'Please tick the consent box so that we may send you the newsletter.',

        'pending_title' => 'Almost done: please check your inbox',
        'pending_text' => 'We have sent you an email with a confirmation link. Open the link and confirm your sign-up – only then will you receive the newsletter.',
        'pending_hint' => 'No email arrived? Please look in your spam folder too. You can simply sign up again later, and we will send the link once more.',

        'confirm_title' => 'Confirm your sign-up',
        'confirm_text' => 'Please press the button to confirm that you want to receive the newsletter.',
        'confirm_button' => 'Yes, subscribe me',
        'confirm_hint' => 'You did not sign up? Then just close this page. Without a confirmation you will get no further email from us.',

        'confirmed_title' => 'Sign-up confirmed',
        'confirmed_again_title' => 'Sign-up already confirmed',
        'confirmed_text' => 'Thank you! From now on you will receive our newsletter.',

        'expired_title' => 'This link has expired',
        'expired_text' => 'This confirmation link is no longer valid because the sign-up was not confirmed in time. Please sign up once more; you will then get a new email.',
        'signup_again' => 'Sign up again',

        'duplicate_title' => 'You are already subscribed',
        'duplicate_text' => 'This email address already receives our newsletter. There is nothing more you need to do.',

        'unsubscribe_title' => 'Unsubscribe from the newsletter',
        'unsubscribe_text' => 'You no longer want to receive our newsletter? Then please confirm with the button.',
        'unsubscribe_button' => 'Unsubscribe',

        'unsubscribed_title' => 'You have been unsubscribed',
        'unsubscribed_text' => 'You will no longer receive our newsletter. Was this a mistake? You can sign up again at any time.',
        'subscribe_again' => 'Sign up again',

        'error_title' => 'Sorry, that did not work',
        'error_unavailable' => 'Our newsletter service cannot be reached at the moment. Please try again in a few minutes.',
        'error_rate_limited' => 'There are too many requests right now. Please try again in a few minutes.',
        'error_unknown_token' => 'This link is not valid or no longer known. Please check that you copied all of it from the email.',
        'error_no_token' => 'This link is incomplete. Please open it straight from the email, or copy all of it into the address bar.',
        'error_invalid_email' => 'We cannot use this email address. Please check its spelling and try again.',
        'error_other' => 'Your request could not be processed. Please try again.',
        'error_method' => 'This page cannot be requested this way.',
        'back_to_form' => 'Back to the sign-up form',
        'try_again' => 'Try again',

        'archive_link' => 'Our newsletter archive',
        'archive_title' => 'Newsletter archive',
        'archive_intro' => 'Every issue of our newsletter so far, the newest first.',
        'archive_empty' => 'No issue has been published yet.',
        'archive_older' => 'Older issues',
        'archive_newer' => 'Back to the newest issues',
        'archive_back' => 'Back to the archive',
        'archive_sent' => 'Sent on',
        'archive_frame' => 'The issue as it was sent by email',
        'archive_feed' => 'Subscribe to the feed (Atom)',
        'archive_unknown' => 'This issue is not in our archive.',
        'archive_subscribe' => 'Subscribe to the newsletter',
        'date_format' => 'j F Y',
    ],
];
