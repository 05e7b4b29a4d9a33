"""Every string our pages (app/web/templates and static/checkout/*.js) show, in Japanese and
English. Japanese is the default: the shop and its card gateway are Japanese.

Keys starting with ``js_`` are handed to the page scripts as one JSON ``data-messages``
attribute; ``{placeholders}`` in them are filled in by the script (``{code}``, ``{seconds}``)
or by the template (``{amount}``). Both languages must have exactly the same keys (a unit test
can assert it with :func:`missing_keys`).
"""

from __future__ import annotations

from typing import Final

DEFAULT_LANG: Final = "ja"

_JA: Final[dict[str, str]] = {
    # --- layout ---------------------------------------------------------------------------
    "brand": "セキュアチェックアウト",
    "lang_switch": "English",
    "lang_switch_label": "Switch to English",
    "secure_note": (
        "カード情報はお使いのブラウザから決済代行会社（ROBOT PAYMENT）へ直接送信されます。"
        "当店のサーバーがカード番号やセキュリティコードを受け取ったり保存したりすることはありません。"
    ),
    "noscript": "お支払いには JavaScript を有効にしてください。",
    # --- checkout page --------------------------------------------------------------------
    "checkout_title": "お支払い",
    "summary_title": "ご注文内容",
    "amount_label": "商品金額",
    "tax_label": "税",
    "shipping_label": "送料",
    "total_label": "合計",
    "item_code_label": "商品コード",
    "order_id_label": "注文番号",
    "jst_suffix": "（日本時間）",
    "expires_label": "お支払い期限",
    "expires_notice": (
        "期限を過ぎるとこのページからはお支払いできません。ショップからやり直してください。"
    ),
    "auth_note": "今回はカードの与信（仮売上）のみを行い、商品の発送時に売上が確定します。",
    "saved_cards_legend": "登録済みのカード",
    "saved_card_expiry": "有効期限",
    "saved_card_unnamed": "登録カード",
    "new_card_option": "新しいカードを使う",
    "card_section_title": "クレジットカード情報",
    "card_brands": "VISA / Mastercard / JCB / American Express / Diners Club",
    "card_brands_label": "ご利用いただけるカード",
    "cn_label": "カード番号",
    "cn_hint": "数字で入力してください（全角数字・スペースも使えます）",
    "expiry_label": "有効期限",
    "month_label": "月",
    "year_label": "年",
    "month_placeholder": "月",
    "year_placeholder": "年",
    "name_label": "カード名義（ローマ字）",
    "fn_label": "名",
    "ln_label": "姓",
    "fn_placeholder": "TARO",
    "ln_placeholder": "YAMADA",
    "name_hint": "カードに記載のとおり半角英字で入力してください",
    "cvv_label": "セキュリティコード",
    "cvv_hint": "カード裏面の3桁の数字（American Express は表面の4桁）",
    "popup_note": "「支払う」ボタンを押すと、決済代行会社のカード情報入力画面が開きます。",
    "card_unavailable": (
        "ただいまカードでのお支払いを受け付けられません。しばらくしてからもう一度お試しいただくか、"
        "ショップにお問い合わせください。"
    ),
    "three_ds_note": (
        "カード会社の本人認証（3-Dセキュア）画面が表示された場合は、画面の案内に従ってください。"
    ),
    # GATEWAY_PROVIDER=sbps with SBPS_THREE_DS off: no 3-D Secure with this shop's contract.
    "sbps_no_3ds_note": ("このお支払いでは本人認証（3-Dセキュア）は行われません。"),
    # The result page while the shopper still has to pass 3-D Secure (SBPS's redirect).
    "three_ds_continue_message": (
        "カード会社の本人認証（3-Dセキュア）画面へ移動します。移動しない場合は下のボタンを押してください。"
    ),
    "three_ds_continue_button": "本人認証へ進む",
    "three_ds_abandoned": (
        "本人認証（3-Dセキュア）が時間内に完了しなかったため、お支払いできませんでした"
        "（課金はされていません）。"
    ),
    "secure_note_sbps": (
        "カード情報はお使いのブラウザから決済代行会社（SBペイメントサービス）へ直接送信されます。"
        "当店のサーバーがカード番号やセキュリティコードを受け取ったり保存したりすることはありません。"
    ),
    "pay_button": "{amount} を支払う",
    # --- card registration page -------------------------------------------------------------
    "register_title": "カードの登録",
    "register_intro": (
        "次回から入力なしでお支払いいただけるよう、カードを登録します。"
        "この操作で代金は請求されません。"
    ),
    # The registration page's side panel (its main panel's heading is register_title).
    "register_summary_title": "ご登録について",
    "register_customer_label": "お客様ID",
    "registered_cards_title": "登録済みのカード",
    "register_expires_label": "このページの有効期限",
    "delete_card": "削除",
    "card_deleted": "カードを削除しました。",
    "register_button": "カードを登録する",
    "register_done_title": "カードを登録しました",
    "register_done": "カードの登録が完了しました。",
    "register_failed_title": "カードを登録できませんでした",
    "save_card_note": "このカードは登録され、次回から入力なしでお支払いいただけます。",
    "save_card_offer": "このカードを保存して、次回から入力なしで支払う",
    "pay_option_label": "お支払い方法",
    "pay_option_hint": "分割払い・リボ払いの手数料はカード会社の規定によります。",
    "pay_option_lump": "一括払い",
    "pay_option_installments": "分割払い({count}回)",
    "pay_option_revolving": "リボ払い",
    # --- page scripts (checkout.js / result.js) ------------------------------------------
    "js_processing": "処理中…",
    "js_err_fix_fields": "入力内容に誤りがあります。赤く表示された項目をご確認ください。",
    "js_err_cn_required": "カード番号を入力してください。",
    "js_err_cn_format": "カード番号は半角数字で入力してください。",
    "js_err_cn_length": "カード番号の桁数が正しくありません（13〜19桁）。",
    "js_err_cn_luhn": "カード番号に誤りがあります。もう一度ご確認ください。",
    "js_err_ed_required": "有効期限（月・年）を選択してください。",
    "js_err_ed_past": "有効期限が切れています。",
    "js_err_fn_required": "名義（名）を入力してください。",
    "js_err_ln_required": "名義（姓）を入力してください。",
    "js_err_name_chars": "半角英字と「.」「-」のみ入力できます（スペースは使えません）。",
    "js_err_name_length": "名義は名と姓を合わせて44文字以内で入力してください。",
    "js_err_cvv": "セキュリティコード（カード裏面の3桁の数字）を入力してください。",
    "js_err_cvv_4": "セキュリティコード（カード表面の4桁の数字）を入力してください。",
    "js_brand_visa": "VISA",
    "js_brand_mastercard": "Mastercard",
    "js_brand_jcb": "JCB",
    "js_brand_amex": "American Express",
    "js_brand_diners": "Diners Club",
    "js_err_choose_card": "お支払いに使うカードを選択してください。",
    "js_err_script": (
        "決済システムを読み込めませんでした。通信環境をご確認のうえ、ページを再読み込みしてください。"
    ),
    "js_err_no_token": "カード情報を確認できませんでした。もう一度お試しください。",
    "js_err_generic": "お支払い手続きでエラーが発生しました。もう一度お試しください。",
    "js_err_3ds": "本人認証（3-Dセキュア）を開始できませんでした。",
    "js_err_code": "エラーコード: {code}",
    "js_err_ER055": "カード番号が正しくありません。ご確認のうえ再度入力してください。",
    "js_err_ER056": "有効期限が正しくありません。ご確認のうえ再度選択してください。",
    "js_err_ER057": "カード名義（名）が正しくありません。半角英字で入力してください。",
    "js_err_ER058": "カード名義（姓）が正しくありません。半角英字で入力してください。",
    "js_err_ER079": "セキュリティコードが正しくありません。",
    "js_err_ER584": "カード情報の確認が無効になりました。お手数ですがもう一度お試しください。",
    "js_err_ER585": "カード情報の確認の有効期限（15分）が切れました。もう一度お試しください。",
    "js_expired": "お支払いの期限が切れました。ショップからもう一度お手続きください。",
    "js_redirecting": "{seconds}秒後にショップへ移動します…",
    # While the post waits for the gateway: what is happening, then that waiting is normal.
    "js_progress_sent": "カード会社に確認しています。このままお待ちください。",
    "js_progress_wait": (
        "まだ確認しています。このページを閉じたり再読み込みしたりせずにお待ちください。"
        "二重に請求されることはありません。"
    ),
    "js_progress_long": (
        "カード会社の応答に時間がかかっています。1分ほどかかることがあります。"
        "結果はこのページに表示されます。"
    ),
    "js_pending_slow": (
        "確認に時間がかかっています。このページを閉じても、お支払いの結果はショップからお知らせします。"
        "もう一度お支払いしないでください。"
    ),
    # --- result page ----------------------------------------------------------------------
    "result_title_succeeded": "お支払いが完了しました",
    "result_title_failed": "お支払いができませんでした",
    "result_title_pending": "決済結果を確認しています",
    "result_title_unknown": "お支払いを確認しています",
    "result_succeeded": "ご注文ありがとうございます。お支払いを受け付けました。",
    "result_failed": (
        "お支払いができませんでした。カード情報をご確認のうえ、もう一度お試しください。"
    ),
    "result_pending": "決済代行会社からの結果を待っています。このままお待ちください。",
    "result_unknown": "決済代行会社にお支払いの状況を確認しています。",
    "result_do_not_pay_again": (
        "二重のご請求を防ぐため、もう一度お支払いしないでください。"
        "確認ができ次第、ショップからご連絡します。"
    ),
    "payment_id_label": "決済番号",
    "amount_total_label": "お支払い金額",
    "content_id_label": "コンテンツID",
    "content_password_label": "コンテンツパスワード",
    "content_note": "ご購入いただいたコンテンツのIDとパスワードです。控えておいてください。",
    "continue_button": "ショップに戻る",
    "retry_button": "もう一度お支払いする",
    "cancel_link": "お支払いをやめてショップに戻る",
    # --- error page -----------------------------------------------------------------------
    "error_back": "戻る",
    "error_not_found_title": "ページが見つかりません",
    "error_not_found_message": (
        "お支払いページが見つかりません。URLをご確認いただくか、ショップからやり直してください。"
    ),
    "error_conflict_title": "お支払い済みです",
    "error_conflict_message": (
        "このご注文のお支払いはすでに完了しているか、処理中です。もう一度お支払いしないでください。"
    ),
    "error_expired_title": "お支払いの期限が切れました",
    "error_expired_message": (
        "このお支払いページは期限切れです。ショップからもう一度お手続きください。"
    ),
    "error_invalid_title": "入力内容を確認してください",
    "error_invalid_message": "送信された内容に誤りがあります。もう一度お試しください。",
    "error_too_many_title": "お試しの回数が多すぎます",
    "error_too_many_message": (
        "短時間に何度もお支払いが試されました。しばらくしてからもう一度お試しください。"
    ),
    "error_unavailable_title": "ただいまお支払いを受け付けられません",
    "error_unavailable_message": (
        "決済システムのメンテナンス中か、混み合っています。しばらくしてからもう一度お試しください。"
    ),
    "error_card_data": (
        "カード情報を当店のサーバーへ送信することはできません。もう一度お試しください。"
    ),
    "error_no_token": "カード情報の確認結果を受け取れませんでした。もう一度お試しください。",
    "error_forbidden_title": "このページからは送信できません",
    "error_forbidden_message": "このページからは送信できません。ショップからやり直してください。",
    "error_server_title": "エラーが発生しました",
    "error_server_message": (
        "申し訳ありません。当店側で問題が発生しました。二重にご請求することはありません。"
        "しばらくしてからもう一度お試しください。"
    ),
    # Problems the shopper's pages can meet, by the problem's code (app/errors.py).
    "problem_already_paid": "このご注文のお支払いはすでに完了しています。",
    "problem_payment_in_progress": (
        "このご注文のお支払いを処理中です。結果が出るまでお待ちください。もう一度お支払いしないでください。"
    ),
    "problem_in_progress": "カードを登録中です。完了するまでお待ちください。",
    "problem_customer_deleted": (
        "このお客様の登録は削除されています。ショップにお問い合わせください。"
    ),
    "problem_too_many_attempts": (
        "このお支払いページで試せる回数を超えました。ショップからもう一度お手続きください。"
    ),
    "problem_too_many_failures": (
        "短時間にお支払いの失敗が続いたため、しばらくお受けできません。時間をおいてお試しください。"
    ),
    "problem_installments_not_offered": "この回数の分割払いはご利用いただけません。",
    "problem_database_unavailable": (
        "ただいまシステムに接続できません。ご請求は発生していません。"
        "しばらくしてからもう一度お試しください。"
    ),
    "problem_payment_method_not_offered": "このお支払い方法はご利用いただけません。",
    "problem_not_processed": (
        "お手続きできませんでした。ご請求は発生していません。もう一度お試しください。"
    ),
    "error_cross_site": (
        "別のサイトから送信されたため、受け付けませんでした。"
        "ショップのお支払いページからもう一度お手続きください。"
    ),
    # --- sandbox demo shop ----------------------------------------------------------------
    "demo_title": "サンドボックス デモショップ",
    "demo_badge": "サンドボックス — 実際のご請求は発生しません",
    "sandbox_badge": "テスト環境 — 実際のご請求は発生しません",
    "demo_events_link": "このショップが受け取ったイベント",
    "demo_events_title": "受け取ったイベント",
    "demo_events_lead": (
        "決済サービスから署名付きで届いたお知らせです（署名を確認済み、新しい順）。"
    ),
    "demo_events_none": "まだありません。お買い物をすると、ここに届きます。",
    "demo_events_time": "受信日時",
    "demo_events_type": "種類",
    "demo_events_object": "対象",
    "demo_events_status": "状態",
    "demo_events_back": "ショップに戻る",
    "demo_lead": (
        "テスト用の決済ゲートウェイにつながったデモショップです。下のテストカードでお試しください。"
    ),
    "demo_product_name": "抹茶セット",
    "demo_product_desc": "宇治抹茶（30g）と茶筅・茶杓のセット",
    "demo_qty": "数量: 1",
    "demo_email_label": "メールアドレス",
    "demo_email_hint": "3-Dセキュアの本人認証に使われます",
    "demo_job_label": "売上の種類",
    "demo_job_capture": "即時売上（CAPTURE）",
    "demo_job_auth": "仮売上のみ（AUTH）",
    "demo_customer_label": "会員ID（任意・英数字）",
    "demo_customer_hint": "カードを保存すると、次回から同じ会員IDで登録済みカードを選べます",
    "demo_save_card": "このカードを保存する",
    "demo_submit": "購入手続きへ",
    "demo_test_cards_title": "テストカード",
    "demo_card_number": "カード番号",
    "demo_card_behaviour": "動作",
    "demo_card_rules": (
        "有効期限: 未来の任意の月 / セキュリティコード: 123 / "
        "名義: 任意の半角英字（例: 名 TARO / 姓 YAMADA）"
    ),
}

_EN: Final[dict[str, str]] = {
    # --- layout ---------------------------------------------------------------------------
    "brand": "Secure checkout",
    "lang_switch": "日本語",
    "lang_switch_label": "日本語に切り替える",
    "secure_note": (
        "Your card details go straight from your browser to our payment provider "
        "(ROBOT PAYMENT). Our servers never receive or store your card number or security code."
    ),
    "noscript": "Please enable JavaScript to pay.",
    # --- checkout page --------------------------------------------------------------------
    "checkout_title": "Payment",
    "summary_title": "Order summary",
    "amount_label": "Subtotal",
    "tax_label": "Tax",
    "shipping_label": "Shipping",
    "total_label": "Total",
    "item_code_label": "Item code",
    "order_id_label": "Order number",
    "jst_suffix": "JST",
    "expires_label": "Pay by",
    "expires_notice": (
        "After this time the page can no longer be used; please start again from the shop."
    ),
    "auth_note": "Your card is only authorized now; the charge is completed when your order ships.",
    "saved_cards_legend": "Saved cards",
    "saved_card_expiry": "Expires",
    "saved_card_unnamed": "Saved card",
    "new_card_option": "Use a new card",
    "card_section_title": "Card details",
    "card_brands": "VISA / Mastercard / JCB / American Express / Diners Club",
    "card_brands_label": "Cards accepted",
    "cn_label": "Card number",
    "cn_hint": "Digits (spaces and full-width digits are fine)",
    "expiry_label": "Expiry date",
    "month_label": "Month",
    "year_label": "Year",
    "month_placeholder": "MM",
    "year_placeholder": "YYYY",
    "name_label": "Name on card",
    "fn_label": "Given name",
    "ln_label": "Family name",
    "fn_placeholder": "TARO",
    "ln_placeholder": "YAMADA",
    "name_hint": "As printed on the card, in Latin letters",
    "cvv_label": "Security code",
    "cvv_hint": "3 digits on the back (4 digits on the front for American Express)",
    "popup_note": "When you press Pay, our payment provider's card form opens.",
    "card_unavailable": (
        "Card payment is not available at the moment. Please try again later or contact the shop."
    ),
    "three_ds_note": (
        "Your card issuer may ask you to verify the payment (3-D Secure); follow its instructions."
    ),
    "sbps_no_3ds_note": "This payment is made without 3-D Secure verification.",
    "three_ds_continue_message": (
        "Taking you to your card issuer's verification (3-D Secure). If nothing happens, press "
        "the button below."
    ),
    "three_ds_continue_button": "Continue to verification",
    "three_ds_abandoned": (
        "The card's verification (3-D Secure) was not completed in time, so nothing was charged."
    ),
    "secure_note_sbps": (
        "Your card details go straight from your browser to our payment provider (SB Payment "
        "Service). Our servers never receive or store your card number or security code."
    ),
    "pay_button": "Pay {amount}",
    # --- card registration page -------------------------------------------------------------
    "register_title": "Add a card",
    "register_intro": (
        "Save a card so that you can pay without typing it next time. Nothing is charged now."
    ),
    "register_summary_title": "About this registration",
    "register_customer_label": "Customer ID",
    "registered_cards_title": "Your saved cards",
    "register_expires_label": "This page expires",
    "delete_card": "Delete",
    "card_deleted": "The card has been deleted.",
    "register_button": "Save card",
    "register_done_title": "Card saved",
    "register_done": "Your card has been saved.",
    "register_failed_title": "The card could not be saved",
    "save_card_note": "This card will be saved so you can pay with one click next time.",
    "save_card_offer": "Save this card to pay with one click next time",
    "pay_option_label": "Payment method",
    "pay_option_hint": "Installment and revolving fees follow your card company's terms.",
    "pay_option_lump": "Lump sum",
    "pay_option_installments": "{count} installments",
    "pay_option_revolving": "Revolving",
    # --- page scripts (checkout.js / result.js) ------------------------------------------
    "js_processing": "Processing…",
    "js_err_fix_fields": "Please check the fields marked in red.",
    "js_err_cn_required": "Enter your card number.",
    "js_err_cn_format": "The card number may contain digits only.",
    "js_err_cn_length": "The card number must have 13 to 19 digits.",
    "js_err_cn_luhn": "This card number is not valid. Please check it.",
    "js_err_ed_required": "Choose the expiry month and year.",
    "js_err_ed_past": "This card has expired.",
    "js_err_fn_required": "Enter the given name on the card.",
    "js_err_ln_required": "Enter the family name on the card.",
    "js_err_name_chars": 'Use Latin letters, "." and "-" only (no spaces).',
    "js_err_name_length": "Given and family name together may be at most 44 characters.",
    "js_err_cvv": "Enter the 3-digit security code from the back of the card.",
    "js_err_cvv_4": "Enter the 4-digit security code from the front of the card.",
    "js_brand_visa": "VISA",
    "js_brand_mastercard": "Mastercard",
    "js_brand_jcb": "JCB",
    "js_brand_amex": "American Express",
    "js_brand_diners": "Diners Club",
    "js_err_choose_card": "Choose the card to pay with.",
    "js_err_script": (
        "The payment system could not be loaded. Check your connection and reload the page."
    ),
    "js_err_no_token": "Your card could not be verified. Please try again.",
    "js_err_generic": "Something went wrong with the payment. Please try again.",
    "js_err_3ds": "Card verification (3-D Secure) could not be started.",
    "js_err_code": "Error code: {code}",
    "js_err_ER055": "The card number is not valid. Please check it and try again.",
    "js_err_ER056": "The expiry date is not valid. Please check it and try again.",
    "js_err_ER057": "The given name on the card is not valid. Use Latin letters.",
    "js_err_ER058": "The family name on the card is not valid. Use Latin letters.",
    "js_err_ER079": "The security code is not valid.",
    "js_err_ER584": "The card check is no longer valid. Please try again.",
    "js_err_ER585": "The card check expired (15 minutes). Please try again.",
    "js_expired": "This payment page has expired. Please start again from the shop.",
    "js_redirecting": "Returning to the shop in {seconds} s…",
    "js_progress_sent": "Checking with your card company. Please wait.",
    "js_progress_wait": (
        "Still checking. Please do not close or reload this page; you will not be charged twice."
    ),
    "js_progress_long": (
        "Your card company is taking longer than usual; this can take up to a minute. "
        "The result will appear on this page."
    ),
    "js_pending_slow": (
        "This is taking longer than usual. You may close this page: the shop will tell you the "
        "result. Please do not pay again."
    ),
    # --- result page ----------------------------------------------------------------------
    "result_title_succeeded": "Payment complete",
    "result_title_failed": "Payment failed",
    "result_title_pending": "Waiting for the payment result",
    "result_title_unknown": "We are confirming your payment",
    "result_succeeded": "Thank you for your order. Your payment has been accepted.",
    "result_failed": (
        "The payment did not go through. Please check your card details and try again."
    ),
    "result_pending": "We are waiting for the result from the payment provider. Please wait.",
    "result_unknown": "We are checking the status of your payment with the payment provider.",
    "result_do_not_pay_again": (
        "To avoid being charged twice, please do not pay again. "
        "The shop will contact you as soon as the payment is confirmed."
    ),
    "payment_id_label": "Payment ID",
    "amount_total_label": "Amount",
    "content_id_label": "Content ID",
    "content_password_label": "Content password",
    "content_note": "The ID and password of the content you bought. Please keep a note of them.",
    "continue_button": "Return to the shop",
    "retry_button": "Try again",
    "cancel_link": "Cancel and return to the shop",
    # --- error page -----------------------------------------------------------------------
    "error_back": "Go back",
    "error_not_found_title": "Page not found",
    "error_not_found_message": (
        "This payment page does not exist. Check the link or start again from the shop."
    ),
    "error_conflict_title": "Already paid",
    "error_conflict_message": (
        "This order has already been paid or is being processed. Please do not pay again."
    ),
    "error_expired_title": "This payment page has expired",
    "error_expired_message": "The time to pay has run out. Please start again from the shop.",
    "error_invalid_title": "Please check your input",
    "error_invalid_message": "Something in the request was not valid. Please try again.",
    "error_too_many_title": "Too many attempts",
    "error_too_many_message": (
        "There were too many payment attempts. Please wait a while and try again."
    ),
    "error_unavailable_title": "Payments are unavailable right now",
    "error_unavailable_message": (
        "The payment system is under maintenance or busy. Please try again later."
    ),
    "error_card_data": "Card details must not be sent to this server. Please try again.",
    "error_no_token": "No card check result was received. Please try again.",
    "error_forbidden_title": "This form cannot be sent from here",
    "error_forbidden_message": (
        "This form cannot be sent from here. Please start again from the shop."
    ),
    "error_server_title": "Something went wrong",
    "error_server_message": (
        "Sorry, something went wrong on our side. You will not be charged twice. "
        "Please try again later."
    ),
    "problem_already_paid": "This order has already been paid.",
    "problem_payment_in_progress": (
        "This order's payment is being processed. Please wait for the result; do not pay again."
    ),
    "problem_in_progress": "This card is already being registered. Please wait until it is done.",
    "problem_customer_deleted": (
        "This customer's registration was deleted. Please contact the shop."
    ),
    "problem_too_many_attempts": (
        "This payment page has been tried too many times. Please start again from the shop."
    ),
    "problem_too_many_failures": (
        "Too many payments failed in a short time. Please wait a while and try again."
    ),
    "problem_installments_not_offered": "Payment in this many installments is not offered.",
    "problem_database_unavailable": (
        "The service cannot reach its database right now; nothing was charged. "
        "Please try again in a moment."
    ),
    "problem_payment_method_not_offered": "This payment method is not offered.",
    "problem_not_processed": "This could not be done; nothing was charged. Please try again.",
    "error_cross_site": (
        "This request came from another website and was refused. Please start again from "
        "the shop's payment page."
    ),
    # --- sandbox demo shop ----------------------------------------------------------------
    "demo_title": "Sandbox demo shop",
    "demo_badge": "Sandbox — no real money moves",
    "sandbox_badge": "Test mode — no real money moves",
    "demo_events_link": "Events this shop received",
    "demo_events_title": "Events received",
    "demo_events_lead": (
        "What the payment service told this shop, signed (signatures checked; newest first)."
    ),
    "demo_events_none": "None yet. Buy something and they arrive here.",
    "demo_events_time": "Received",
    "demo_events_type": "Type",
    "demo_events_object": "Object",
    "demo_events_status": "Status",
    "demo_events_back": "Back to the shop",
    "demo_lead": "A demo shop wired to the test gateway. Try it with the test cards below.",
    "demo_product_name": "Matcha set",
    "demo_product_desc": "Uji matcha (30 g) with a whisk and scoop",
    "demo_qty": "Quantity: 1",
    "demo_email_label": "Email",
    "demo_email_hint": "Used for 3-D Secure verification",
    "demo_job_label": "Charge type",
    "demo_job_capture": "Capture now (CAPTURE)",
    "demo_job_auth": "Authorize only (AUTH)",
    "demo_customer_label": "Customer ID (optional, letters and digits)",
    "demo_customer_hint": "Save the card once, then pick it again next time with the same ID",
    "demo_save_card": "Save this card",
    "demo_submit": "Proceed to checkout",
    "demo_test_cards_title": "Test cards",
    "demo_card_number": "Card number",
    "demo_card_behaviour": "What it does",
    "demo_card_rules": (
        "Expiry: any future month / Security code: 123 / "
        "Name: any Latin letters (e.g. given TARO / family YAMADA)"
    ),
}

MESSAGES: Final[dict[str, dict[str, str]]] = {"ja": _JA, "en": _EN}


def messages(lang: str) -> dict[str, str]:
    """The message table for ``lang``; anything but a known language gets Japanese."""
    return MESSAGES.get(lang, MESSAGES[DEFAULT_LANG])


def js_messages(lang: str) -> dict[str, str]:
    """The subset the page scripts use (keys starting with ``js_``, prefix removed)."""
    return {k[3:]: v for k, v in messages(lang).items() if k.startswith("js_")}


def missing_keys() -> dict[str, set[str]]:
    """Keys that a language lacks compared with the union of all languages (empty = complete)."""
    every = set().union(*(m.keys() for m in MESSAGES.values()))
    return {lang: every - m.keys() for lang, m in MESSAGES.items() if every - m.keys()}


__all__ = ["DEFAULT_LANG", "MESSAGES", "js_messages", "messages", "missing_keys"]
