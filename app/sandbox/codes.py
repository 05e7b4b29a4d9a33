"""Gateway error codes the simulator answers with (seed 000 p.26, research section 1.4), and the
exception that carries one out of any validation step."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "ER000": "決済システム内部エラー",
    "ER001": "リクエストエラー",
    "ER003": "送信元IPエラー",
    "ER004": "店舗設定エラー",
    "ER005": "商品情報エラー",
    "ER014": "カード番号が正しくありません",
    "ER030": "決済失敗",
    "ER031": "有効性チェックエラー",
    "ER032": "実売上処理失敗",
    "ER033": "取消処理失敗",
    "ER050": "パラメータ: aidエラー",
    "ER051": "パラメータ: jbエラー",
    "ER052": "パラメータ: rtエラー",
    "ER053": "パラメータ: tidエラー",
    "ER054": "パラメータ: codエラー",
    "ER055": "パラメータ: cnエラー",
    "ER056": "パラメータ: edエラー",
    "ER057": "パラメータ: fnエラー",
    "ER058": "パラメータ: lnエラー",
    "ER059": "パラメータ: emエラー",
    "ER060": "パラメータ: pnエラー",
    "ER061": "パラメータ: amエラー",
    "ER062": "パラメータ: txエラー",
    "ER063": "パラメータ: sfエラー",
    "ER064": "パラメータ: mdエラー",
    "ER065": "パラメータ: ptエラー",
    "ER066": "パラメータ: iidエラー",
    "ER069": "パラメータ: cmdエラー",
    "ER079": "パラメータ: cvvエラー",
    "ER147": "パラメータ: uidエラー",
    "ER148": "パラメータ: keyエラー",
    "ER149": "パラメータ: numエラー",
    "ER583": "トークン未設定",
    "ER584": "トークン有効期限切れ（トークン情報を取得できません）",
    "ER585": "トークン有効期限切れ（発行から15分経過）",
    "ER586": "トークンとカード番号が同時に送信されました",
    "ER652": "ユーザー登録: 店舗指定ユーザーID重複エラー",
    "ER653": "ユーザー登録: ユーザー削除済みエラー",
    "ER654": "ユーザー登録: cmd=4利用不可",
    "ER900": "3Dセキュア認証エラー",
    "ER901": "3Dセキュア認証エラー（認証情報が決済内容と一致しません）",
    "ER902": "3Dセキュア認証エラー（認証セッションが無効です）",
    "ER999": "メンテナンス中",
    "G12": "カード会社取扱不可",
    "G55": "限度額オーバー",
    "G83": "有効期限エラー",
}


def message(code: str) -> str:
    return MESSAGES.get(code, "エラーが発生しました")


class GatewayError(Exception):
    """A request the gateway refuses before any card-company contact: answered with `code`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
