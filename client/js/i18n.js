// All words the client shows, in Japanese (first) and English; the choice is kept in localStorage.
// Elements made with dom.js's `t:` option carry data-i18n and are re-labelled on a switch.

const STRINGS = {
  ja: {
    "app.name": "窓口 オンライン相談",
    "app.sub": "Madoguchi",
    "lang.toggle": "English",
    "lang.toggle.label": "Switch to English",
    "skip": "本文へ移動",
    "loading": "読み込んでいます…",

    "start.title": "オンライン相談に参加する",
    "start.lead": "市役所からのご案内メールに書かれたリンクを開くか、参加IDとパスコードを入力してください。",
    "start.join": "参加IDとパスコードで参加する",
    "start.check": "カメラとマイクを確認する",
    "start.staff": "職員の方はこちら",
    "start.help": "ご不明な点は、ご案内メールに書かれた担当窓口へお電話ください。",

    "join.title": "相談に参加する",
    "join.link.title": "ご案内のリンクから参加します",
    "join.link.lead": "このリンクは、あなた専用です。ほかの方に渡さないでください。",
    "join.id": "参加ID",
    "join.id.hint": "ご案内メールに書かれた数字です（例: 48120755）",
    "join.passcode": "パスコード",
    "join.passcode.hint": "ご案内メールに書かれたパスコードです",
    "join.name": "お名前（表示名）",
    "join.name.hint": "ほかの参加者に表示されます。お名前を表示しない会（公聴会など）では使われません。",
    "join.next": "次へ（カメラとマイクの確認）",
    "join.missing.id": "参加IDを入力してください。",
    "join.missing.passcode": "パスコードを入力してください。",
    "join.problem": "入力内容を確認してください",
    "join.back": "戻る",

    "check.title": "カメラとマイクの確認",
    "check.lead": "入室する前に、映像と音声を確認してください。",
    "check.mode": "参加のしかた",
    "check.mode.video": "カメラとマイクを使う",
    "check.mode.audio": "音声だけで参加する（カメラを使わない）",
    "check.mode.view": "見るだけ・聞くだけで参加する（カメラもマイクも使わない）",
    "check.camera": "カメラ",
    "check.mic": "マイク",
    "check.speaker": "スピーカー",
    "check.preview": "カメラの映像（ご自分の姿）",
    "check.preview.off": "カメラは使いません",
    "check.preview.wait": "カメラを準備しています…",
    "check.level": "マイクの音量",
    "check.level.hint": "話すと、下の棒が伸びます。",
    "check.level.heard": "マイクの音が届いています。",
    "check.speaker.test": "テスト音を鳴らす",
    "check.speaker.hint": "「ポーン」という音が聞こえれば、スピーカーは使えます。",
    "check.enter": "この設定で入室する",
    "check.done": "確認が終わりました",
    "check.default": "標準の機器",

    "perm.title": "カメラまたはマイクが使えません",
    "perm.denied": "ブラウザーで、カメラとマイクの使用が「ブロック」されています。",
    "perm.how": "次の手順で許可してください：",
    "perm.step1": "画面上部のアドレスバーの左にある鍵のマーク（または「サイトの設定」）を押します。",
    "perm.step2": "「カメラ」と「マイク」を「許可」にします。",
    "perm.step3": "このページを再読み込みしてから、もう一度お試しください。",
    "perm.ios": "iPhone・iPad（Safari）の場合：「設定」→「Safari」→「カメラ」と「マイク」を「許可」にしてください。",
    "perm.retry": "もう一度試す",
    "perm.instead": "または、音声だけ・見るだけで参加することもできます。",
    "perm.notfound": "カメラまたはマイクが見つかりません。つながっているか確認してください。",
    "perm.busy": "カメラまたはマイクをほかのアプリが使っています。ほかのアプリを閉じてから、もう一度お試しください。",
    "perm.insecure": "この接続ではカメラとマイクを使えません。ご案内のリンク（https:// で始まるもの）から開いてください。",

    "lobby.title": "待合室でお待ちください",
    "lobby.lead": "職員が入室を許可するまで、このままお待ちください。画面を閉じないでください。",
    "lobby.consultation": "相談",
    "lobby.time": "日時",
    "lobby.you": "あなたのお名前",
    "lobby.checklist": "お手元にご用意ください",
    "lobby.leave": "参加をやめる",
    "lobby.waiting": "入室の許可を待っています…",

    "room.label": "相談室",
    "room.stage": "参加者の映像",
    "room.clock": "現在時刻",
    "room.remaining": "残り時間",
    "room.min": "{m}分",
    "room.mic.on": "マイク オン",
    "room.mic.off": "マイク オフ",
    "room.cam.on": "カメラ オン",
    "room.cam.off": "カメラ オフ",
    "room.share": "画面共有",
    "room.share.stop": "共有をやめる",
    "room.hand.raise": "手を挙げる",
    "room.hand.lower": "手を下げる",
    "room.layout.gallery": "一覧表示",
    "room.layout.speaker": "話者表示",
    "room.chat": "チャット",
    "room.people": "参加者",
    "room.manage": "進行",
    "room.leave": "退室する",
    "room.leave.confirm": "相談から退室しますか？",
    "room.close": "閉じる",
    "room.you": "（あなた）",
    "room.hand.position": "発言待ちの{n}番目です",
    "room.hand.none": "発言を希望するときは「手を挙げる」を押してください。",
    "room.floor.you": "あなたが発言中です。残り {t}",
    "room.floor.other": "発言中: {name}　残り {t}",
    "room.floor.other.untimed": "発言中: {name}",
    "room.floor.none": "いま発言している人はいません。",
    "room.floor.speaker": "いまの発言者",
    "room.queue": "発言待ちの順番",
    "room.queue.empty": "発言待ちの人はいません。",
    "room.reconnecting": "接続が切れました。再接続しています…",
    "room.reconnected": "再接続しました。",
    "room.noone": "ほかの参加者を待っています。",
    "room.screen.of": "{name} の画面",
    "room.muted.by": "職員がマイクをオフにしました。",
    "room.unmute.asked": "職員がマイクをオンにするよう求めています。",
    "room.unmute.accept": "マイクをオンにする",
    "room.hearing.lead": "カメラは使いません。発言の順番が来ると、マイクが使えるようになります。",
    "room.speaking": "話しています",
    "room.audio.blocked": "音声を再生するには、このボタンを押してください。",
    "room.audio.play": "音声を再生する",
    "room.paused": "一時停止中",

    "state.mic.off": "マイク オフ",
    "state.mic.on": "マイク オン",
    "state.cam.on": "カメラ オン",
    "state.screen": "画面共有中",
    "state.hand": "挙手 {n}番目",
    "state.floor": "発言中",
    "state.muted": "職員がミュート",
    "state.disconnected": "接続が切れています",

    "chat.title": "チャット",
    "chat.message": "メッセージ",
    "chat.to": "送り先",
    "chat.to.all": "全員",
    "chat.to.staff": "職員だけ（質問）",
    "chat.send": "送信する",
    "chat.private": "職員あて",
    "chat.empty": "まだメッセージはありません。",

    "mod.lobby": "待合室",
    "mod.lobby.empty": "待っている人はいません。",
    "mod.admit": "入室を許可",
    "mod.deny": "お断りする",
    "mod.mute": "マイクを止める",
    "mod.ask_unmute": "マイクを戻すよう依頼",
    "mod.mute.video": "カメラを止める",
    "mod.remove": "退出させる",
    "mod.remove.confirm": "{name} さんを退出させますか？この相談には再び入れなくなります。",
    "mod.hands": "挙手の順番",
    "mod.grant": "発言を許可",
    "mod.next": "次の人に発言を許可",
    "mod.revoke": "発言を終わらせる",
    "mod.lower": "挙手を取り消す",
    "mod.lock": "新しい入室を止める",
    "mod.unlock": "入室の停止を解除",
    "mod.end": "全員の相談を終了する",
    "mod.end.confirm": "全員の相談を終了しますか？",
    "mod.identity": "本人情報",

    "end.title": "相談は終了しました",
    "end.left": "退室しました。ご利用ありがとうございました。",
    "end.ended": "職員が相談を終了しました。ご利用ありがとうございました。",
    "end.removed": "職員の操作により、相談から退出しました。",
    "end.denied": "職員により入室がお断りされました。ご不明な点は担当窓口へお問い合わせください。",
    "end.replaced": "別の画面（別のタブや端末）からこの相談に入室したため、この画面は終了しました。",
    "end.lost": "接続が回復しませんでした。もう一度参加してください。",
    "end.again": "もう一度参加する",
    "end.home": "最初の画面へ",

    "err.bad_credentials": "参加IDまたはパスコードが違います。ご案内メールをご確認のうえ、もう一度入力してください。",
    "err.bad_credentials.link": "このリンクは使えません。ご案内メールのリンクをもう一度開くか、参加IDとパスコードで参加してください。",
    "err.expired": "このご案内は有効期限が切れたか、取り消されています。担当窓口へお問い合わせください。",
    "err.locked_out": "入力の誤りが続いたため、しばらく参加できません。{m}分ほど待ってから、もう一度お試しください。",
    "err.join_method_not_allowed": "この方法では参加できません。ご案内メールに書かれた方法で参加してください。",
    "err.login_required": "職員としてログインしてください。",
    "err.not_found": "相談が見つかりません。参加IDを確認してください。",
    "err.consultation_closed": "この相談はすでに終了したか、中止されました。",
    "err.room_locked": "この相談は、現在新しい入室を受け付けていません。担当窓口へお問い合わせください。",
    "err.room_full": "この相談は定員に達しています。担当窓口へお問い合わせください。",
    "err.too_early": "この相談はまだ始まっていません。開始時刻になってから、もう一度お試しください。",
    "err.forbidden": "この操作は、あなたの役割ではできません。",
    "err.no_floor_control": "この相談では挙手は使いません。",
    "err.queue_empty": "発言待ちの人はいません。",
    "err.not_in_lobby": "その方はもう待合室にいません。",
    "err.muted_by_moderator": "職員がマイクを止めています。職員から依頼があるまでお待ちください。",
    "err.chat_too_long": "メッセージが長すぎます（2,000文字まで）。",
    "err.rate_limited": "操作が速すぎます。少し待ってから、もう一度お試しください。",
    "err.media_unavailable": "映像と音声の準備ができませんでした。少し待ってから、もう一度お試しください。",
    "err.removed": "職員の操作により、相談から退出しました。",
    "err.network": "サーバーにつながりません。インターネットの接続を確認して、もう一度お試しください。",
    "err.internal": "サーバーで問題が起きました。少し待ってから、もう一度お試しください。",
    "err.generic": "問題が起きました。もう一度お試しください。（コード: {code}）",
    "err.login_failed": "ログイン名またはパスワードが違います。",
    "err.invalid": "入力内容に誤りがあります。",
    "err.role_full": "この役割の人数が上限に達しています。",
    "err.csrf": "画面が古くなりました。再読み込みしてください。",
    "err.media": "映像または音声の接続に失敗しました。再接続しています…",

    "staff.title": "職員コンソール",
    "staff.login": "ログイン",
    "staff.login.name": "ログイン名",
    "staff.password": "パスワード",
    "staff.login.do": "ログインする",
    "staff.logout": "ログアウト",
    "staff.hello": "{name} さん",
    "staff.create": "相談を作る",
    "staff.template": "相談の種類",
    "staff.consult.title": "件名",
    "staff.consult.title.hint": "参加者にも表示されます（例: 山田様 おくやみ相談）",
    "staff.starts": "開始日時",
    "staff.duration": "時間（分）",
    "staff.create.do": "この内容で作る",
    "staff.list": "相談の一覧",
    "staff.list.empty": "相談はまだありません。",
    "staff.open": "開く",
    "staff.state": "状態",
    "staff.state.scheduled": "予定",
    "staff.state.live": "実施中",
    "staff.state.ended": "終了",
    "staff.state.cancelled": "中止",
    "staff.id": "相談ID",
    "staff.participants": "参加者",
    "staff.participants.empty": "まだ参加者はいません。",
    "staff.invite": "参加者を招待する",
    "staff.role": "役割",
    "staff.person.name": "氏名",
    "staff.person.email": "メールアドレス（任意）",
    "staff.person.email.hint": "入力すると、招待メールを送ります。",
    "staff.invite.do": "招待する",
    "staff.invite.done": "招待しました。次の情報は、この画面でしか表示されません。参加者へお伝えください。",
    "staff.link": "参加用リンク",
    "staff.joinid": "参加ID",
    "staff.passcode": "パスコード",
    "staff.enter": "職員として入室する",
    "staff.enter.role": "入室する役割",
    "staff.back": "一覧へ戻る",
    "staff.cancel": "この相談を中止する",
    "staff.cancel.confirm": "この相談を中止しますか？",
    "staff.anonymous": "匿名",
    "staff.created": "相談を作りました。",
  },
  en: {
    "app.name": "Madoguchi online consultation",
    "app.sub": "窓口",
    "lang.toggle": "日本語",
    "lang.toggle.label": "日本語に切り替える",
    "skip": "Skip to content",
    "loading": "Loading…",

    "start.title": "Join an online consultation",
    "start.lead": "Open the link in the email from the city hall, or enter your join ID and passcode.",
    "start.join": "Join with an ID and passcode",
    "start.check": "Check camera and microphone",
    "start.staff": "For staff",
    "start.help": "If anything is unclear, call the office named in your invitation email.",

    "join.title": "Join a consultation",
    "join.link.title": "Joining from your personal link",
    "join.link.lead": "This link is for you only. Please do not pass it on.",
    "join.id": "Join ID",
    "join.id.hint": "The number in your invitation email (e.g. 48120755)",
    "join.passcode": "Passcode",
    "join.passcode.hint": "The passcode in the same email",
    "join.name": "Your name (shown to others)",
    "join.name.hint": "Shown to the other participants. Not used in anonymous sessions such as public hearings.",
    "join.next": "Next (check camera and microphone)",
    "join.missing.id": "Enter your join ID.",
    "join.missing.passcode": "Enter your passcode.",
    "join.problem": "Please check what you entered",
    "join.back": "Back",

    "check.title": "Check camera and microphone",
    "check.lead": "Check your picture and sound before you enter.",
    "check.mode": "How to take part",
    "check.mode.video": "With camera and microphone",
    "check.mode.audio": "Voice only (no camera)",
    "check.mode.view": "Watch and listen only (no camera, no microphone)",
    "check.camera": "Camera",
    "check.mic": "Microphone",
    "check.speaker": "Speaker",
    "check.preview": "Camera picture (yourself)",
    "check.preview.off": "Camera not used",
    "check.preview.wait": "Starting the camera…",
    "check.level": "Microphone level",
    "check.level.hint": "When you speak, the bar below grows.",
    "check.level.heard": "Your microphone can be heard.",
    "check.speaker.test": "Play a test sound",
    "check.speaker.hint": "If you hear a chime, your speaker works.",
    "check.enter": "Enter with these settings",
    "check.done": "Check finished",
    "check.default": "Default device",

    "perm.title": "The camera or microphone cannot be used",
    "perm.denied": "Your browser is blocking the camera and microphone for this site.",
    "perm.how": "To allow them:",
    "perm.step1": "Press the lock icon (or “Site settings”) at the left of the address bar.",
    "perm.step2": "Set “Camera” and “Microphone” to “Allow”.",
    "perm.step3": "Reload this page and try again.",
    "perm.ios": "On iPhone or iPad (Safari): Settings → Safari → set “Camera” and “Microphone” to “Allow”.",
    "perm.retry": "Try again",
    "perm.instead": "You can also take part with voice only, or watch and listen only.",
    "perm.notfound": "No camera or microphone was found. Check that it is connected.",
    "perm.busy": "Another app is using the camera or microphone. Close it and try again.",
    "perm.insecure": "The camera and microphone cannot be used on this connection. Open the link from your invitation (starting with https://).",

    "lobby.title": "Please wait in the waiting room",
    "lobby.lead": "Staff will let you in shortly. Please keep this page open.",
    "lobby.consultation": "Consultation",
    "lobby.time": "Date and time",
    "lobby.you": "Your name",
    "lobby.checklist": "Please have these at hand",
    "lobby.leave": "Stop joining",
    "lobby.waiting": "Waiting to be let in…",

    "room.label": "Consultation room",
    "room.stage": "Participants' video",
    "room.clock": "Time now",
    "room.remaining": "Time left",
    "room.min": "{m} min",
    "room.mic.on": "Mic on",
    "room.mic.off": "Mic off",
    "room.cam.on": "Camera on",
    "room.cam.off": "Camera off",
    "room.share": "Share screen",
    "room.share.stop": "Stop sharing",
    "room.hand.raise": "Raise hand",
    "room.hand.lower": "Lower hand",
    "room.layout.gallery": "Gallery",
    "room.layout.speaker": "Speaker view",
    "room.chat": "Chat",
    "room.people": "People",
    "room.manage": "Moderate",
    "room.leave": "Leave",
    "room.leave.confirm": "Leave the consultation?",
    "room.close": "Close",
    "room.you": " (you)",
    "room.hand.position": "You are number {n} in the queue",
    "room.hand.none": "To ask to speak, press “Raise hand”.",
    "room.floor.you": "You have the floor. {t} left",
    "room.floor.other": "Speaking: {name}, {t} left",
    "room.floor.other.untimed": "Speaking: {name}",
    "room.floor.none": "Nobody has the floor.",
    "room.floor.speaker": "Current speaker",
    "room.queue": "Queue to speak",
    "room.queue.empty": "Nobody is waiting to speak.",
    "room.reconnecting": "Connection lost. Reconnecting…",
    "room.reconnected": "Reconnected.",
    "room.noone": "Waiting for the others.",
    "room.screen.of": "{name}'s screen",
    "room.muted.by": "Staff turned your microphone off.",
    "room.unmute.asked": "Staff ask you to turn your microphone on.",
    "room.unmute.accept": "Turn microphone on",
    "room.hearing.lead": "No camera is used. When it is your turn, your microphone is switched on.",
    "room.speaking": "speaking",
    "room.audio.blocked": "Press this button to play the sound.",
    "room.audio.play": "Play sound",
    "room.paused": "Paused",

    "state.mic.off": "Mic off",
    "state.mic.on": "Mic on",
    "state.cam.on": "Camera on",
    "state.screen": "Sharing screen",
    "state.hand": "Hand raised, no. {n}",
    "state.floor": "Speaking",
    "state.muted": "Muted by staff",
    "state.disconnected": "Connection lost",

    "chat.title": "Chat",
    "chat.message": "Message",
    "chat.to": "To",
    "chat.to.all": "Everyone",
    "chat.to.staff": "Staff only (question)",
    "chat.send": "Send",
    "chat.private": "to staff",
    "chat.empty": "No messages yet.",

    "mod.lobby": "Waiting room",
    "mod.lobby.empty": "Nobody is waiting.",
    "mod.admit": "Let in",
    "mod.deny": "Turn away",
    "mod.mute": "Mute microphone",
    "mod.ask_unmute": "Ask to unmute",
    "mod.mute.video": "Stop camera",
    "mod.remove": "Remove",
    "mod.remove.confirm": "Remove {name}? They cannot join this consultation again.",
    "mod.hands": "Hand queue",
    "mod.grant": "Give the floor",
    "mod.next": "Give the floor to the next",
    "mod.revoke": "End this turn",
    "mod.lower": "Take hand down",
    "mod.lock": "Stop new arrivals",
    "mod.unlock": "Allow new arrivals",
    "mod.end": "End the consultation for all",
    "mod.end.confirm": "End the consultation for everyone?",
    "mod.identity": "Identity",

    "end.title": "The consultation is over",
    "end.left": "You have left. Thank you.",
    "end.ended": "Staff ended the consultation. Thank you.",
    "end.removed": "Staff removed you from the consultation.",
    "end.denied": "Staff did not let you in. Please contact the office named in your invitation.",
    "end.replaced": "You joined from another tab or device, so this page has stopped.",
    "end.lost": "The connection did not come back. Please join again.",
    "end.again": "Join again",
    "end.home": "Back to the start",

    "err.bad_credentials": "The join ID or passcode is wrong. Check your invitation email and enter them again.",
    "err.bad_credentials.link": "This link cannot be used. Open the link in your invitation again, or join with your ID and passcode.",
    "err.expired": "This invitation has expired or was withdrawn. Please contact the office.",
    "err.locked_out": "Too many wrong attempts. Wait about {m} minutes and try again.",
    "err.join_method_not_allowed": "You cannot join this way. Use the way given in your invitation.",
    "err.login_required": "Please log in as staff.",
    "err.not_found": "The consultation was not found. Check the ID.",
    "err.consultation_closed": "This consultation has ended or was cancelled.",
    "err.room_locked": "This consultation is not letting anyone new in right now. Please contact the office.",
    "err.room_full": "This consultation is full. Please contact the office.",
    "err.too_early": "This consultation has not started yet. Please try again at the start time.",
    "err.forbidden": "Your role cannot do this.",
    "err.no_floor_control": "This consultation does not use raised hands.",
    "err.queue_empty": "Nobody is waiting to speak.",
    "err.not_in_lobby": "That person is no longer waiting.",
    "err.muted_by_moderator": "Staff have muted your microphone. Please wait until they ask you to unmute.",
    "err.chat_too_long": "The message is too long (2,000 characters at most).",
    "err.rate_limited": "Too fast. Wait a moment and try again.",
    "err.media_unavailable": "Picture and sound could not be set up. Wait a moment and try again.",
    "err.removed": "Staff removed you from the consultation.",
    "err.network": "Cannot reach the server. Check your internet connection and try again.",
    "err.internal": "Something went wrong on the server. Wait a moment and try again.",
    "err.generic": "Something went wrong. Please try again. (code: {code})",
    "err.login_failed": "Wrong login name or password.",
    "err.invalid": "Something you entered is not right.",
    "err.role_full": "This role has reached its maximum number of people.",
    "err.csrf": "This page is out of date. Please reload it.",
    "err.media": "The picture or sound connection failed. Reconnecting…",

    "staff.title": "Staff console",
    "staff.login": "Log in",
    "staff.login.name": "Login name",
    "staff.password": "Password",
    "staff.login.do": "Log in",
    "staff.logout": "Log out",
    "staff.hello": "{name}",
    "staff.create": "Create a consultation",
    "staff.template": "Kind of consultation",
    "staff.consult.title": "Title",
    "staff.consult.title.hint": "Participants see it too (e.g. Yamada family, bereavement)",
    "staff.starts": "Starts at",
    "staff.duration": "Length (minutes)",
    "staff.create.do": "Create",
    "staff.list": "Consultations",
    "staff.list.empty": "No consultations yet.",
    "staff.open": "Open",
    "staff.state": "State",
    "staff.state.scheduled": "Scheduled",
    "staff.state.live": "Live",
    "staff.state.ended": "Ended",
    "staff.state.cancelled": "Cancelled",
    "staff.id": "Consultation ID",
    "staff.participants": "Participants",
    "staff.participants.empty": "No participants yet.",
    "staff.invite": "Invite a participant",
    "staff.role": "Role",
    "staff.person.name": "Name",
    "staff.person.email": "Email (optional)",
    "staff.person.email.hint": "If given, an invitation email is sent.",
    "staff.invite.do": "Invite",
    "staff.invite.done": "Invited. The details below are shown only on this screen: pass them to the participant.",
    "staff.link": "Personal link",
    "staff.joinid": "Join ID",
    "staff.passcode": "Passcode",
    "staff.enter": "Enter as staff",
    "staff.enter.role": "Role to enter as",
    "staff.back": "Back to the list",
    "staff.cancel": "Cancel this consultation",
    "staff.cancel.confirm": "Cancel this consultation?",
    "staff.anonymous": "anonymous",
    "staff.created": "The consultation was created.",
  },
};

const KEY = "madoguchi.lang";
const listeners = new Set();
let lang = readLang();

function readLang() {
  try {
    const saved = localStorage.getItem(KEY);
    if (saved === "ja" || saved === "en") return saved;
  } catch {
    // storage blocked (private mode): Japanese
  }
  return "ja";
}

/** The current language, "ja" or "en". */
export function currentLang() {
  return lang;
}

/** The text for `key` in the current language, with {name} placeholders filled in. */
export function t(key, params = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.ja[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** Whether a string exists for `key`. */
export function has(key) {
  return key in STRINGS.ja;
}

/** Pick the current language from a {ja, en} label. */
export function label(value) {
  if (!value) return "";
  if (typeof value === "string") return value;
  return value[lang] || value.ja || value.en || "";
}

/** Switch language, remember it, and re-label the page. */
export function setLang(next) {
  lang = next === "en" ? "en" : "ja";
  try {
    localStorage.setItem(KEY, lang);
  } catch {
    // not remembered; still switched
  }
  applyLang(document);
  for (const listener of listeners) listener(lang);
}

/** Call `listener(lang)` after every switch; returns a function that stops it. */
export function onLangChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Re-label every element made with a translation key under `root`. */
export function applyLang(root) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) {
    const params = el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : {};
    el.textContent = t(el.dataset.i18n, params);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr, t(key));
    }
  }
}

/** Format a time of day, e.g. 14:05. */
export function formatClock(date) {
  return date.toLocaleTimeString(lang === "ja" ? "ja-JP" : "en-GB", {
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** Format a date and time range for people, e.g. 2026年12月1日(火) 10:00〜11:00. */
export function formatRange(startsAt, endsAt) {
  const locale = lang === "ja" ? "ja-JP" : "en-GB";
  const start = new Date(startsAt);
  const day = start.toLocaleDateString(locale, {
    year: "numeric",
    month: "long",
    day: "numeric",
    weekday: "short",
  });
  const from = formatClock(start);
  if (!endsAt) return `${day} ${from}`;
  return `${day} ${from}${lang === "ja" ? "〜" : "–"}${formatClock(new Date(endsAt))}`;
}

/** Seconds as m:ss. */
export function formatCountdown(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
