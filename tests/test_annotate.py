"""Annotate: think split, language (fastText, scripts), code, paragraphs, repetition, decisions, spans.

The language quality test builds a labeled set from real sentences (Leipzig
corpora via lingua-py's test data, embedded below so it runs on any clone) in
13 languages and 8 scripts, mixed into reasoning at known shares; a larger set
from the full file runs where ../shared is present.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import random
import re

import pytest
from pyspark.sql import functions as F

from sftmix.jobs.whatif import print_whatif, run_whatif, whatif_config
from sftmix.transforms import candidate_signals, code_blocks, language, repetition, scripts
from sftmix.transforms.annotate import (
    ANNOTATE_REASONS,
    AnnotateParams,
    annotate_candidates,
    decide_annotate,
    decision_columns,
    signal_settings,
)
from sftmix.transforms.candidate_signals import SIGNAL_FIELDS, signals_for_rows
from sftmix.transforms.think_split import split_think

from .conftest import SHARED

TEXT_COLUMNS = {"completion", "reasoning_content", "reasoning", "answer", "prompt", "messages"}
SENTENCE_FILE = SHARED / "realdata" / "pemistahl_lingua-py" / "language_testdata_sentences.jsonl"

# Real sentences from the Leipzig corpora (lingua-py language-testdata, Apache-2.0), picked by seeded shuffle.
SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "All managed care efforts depend on management of a discrete amount of funding and on capitation of the length of services delivery.",
        "Here, in a region abundant with natural beauty, golfers will surely be rewarded with an exceptional golf experience.",
        "Funds raised through the voluntary fee station located at the entrance help off-set maintenance costs for the area.",
        "Its construction projects are not carried out exclusively or in the main for the federal Government or any of its agencies.",
        "Endocrinology including diabetes, osteoporosis, post-menopausal health and growth disorders;",
        "An Application for Financial Aid must be submitted in order to qualify for any type of financial aid.",
        "I will do my best to keep you informed as to how things are progressing.",
        "A monetary award was appropriate in that case as there was no link between the property claimed and the contributions of Ms.",
        "Councillors Obee and Wessell refrained from all discussions and voting on these matters.",
        "It is important that we know how these events and others are relevant in our day-to-day lives.",
        "In submitting the proposal to the Faculty of Graduate Studies after it has been approved by the budget Faculty, the following are required:",
        "Please install and register your purchased e-book(s) immediately to qualify for technical support.",
        "A fascinating, in-depth study of reaction rates, equilibrium, solutions, acids and bases and electrochemistry.",
        "He stressed that ephedrine could not be performance-enhancing for equestrian show-jumping and offered to provide expert evidence to this effect.",
        "If you mix feed on your farm, make sure that you don't mix feeds for non-ruminants (such as horses, swine, poultry, etc.) with any feed for ruminants.",
        "It will not splice together different exons to produce a coding sequence.",
        "Advocates are volunteers from the faculty, staff, business community, alumni association and other organizations.",
        "Many remain lost to their authentic core identity.",
        "In some cases it even resulted in disciplinary actions.",
        "May I suggest marketing and non-technical activities make the grade when there is a technological content.",
        "Increasingly, some of the parent companies of those same corporations also produce meal replacements, supplements, and power bars.",
        "Resolutions had been previously mailed to members.",
        "A wise sage once gave me the greatest advice in living the Christian ideals.",
        "But mathematically, he found out so many patterns and such and such properties.",
        "On the other hand, they slow download times - the wait suffered by visitors as they enter your site.",
        "After all, my daughter had the courage to stand in front of a bulldozer.",
        "If this feature is set, instead of using the X to denote a selected message, Pine will attempt to display those index lines in boldface.",
        "Bert's aim was to analyze the energy of the neutrons at each angle of scattering.",
        "If tested, a lifter must show a negative test result in order to remain on the Team.",
        "Men are deriving benefit from having this treatment, without a doubt, because it does stop prostate cancer growth, says Dr.",
        "And we have just seen that a black hole has a non-zero temperature.",
        "Allowances for teaching in special subject areas or special classes do not apply in this context.",
        "Example of wood frame non-loadbearing exterior wall section permitted in buildings required to be of noncombustible construction.",
        "Propane, butanes and ethane are by-products extracted from natural gas processing and refinery processing of crude oil.",
        "He had gone to Paris hoping to be cured, but it didn't work.",
        "In particular, Canada must incorporate the search for fair and lasting peace in the Middle East into its efforts to combat terrorism.",
    ),
    "fr": (
        "Cest une course à la balise, à pied, par équipe, en utilisant un trajet libre.",
        "Mieux encore, nous disposons aujourd'hui des outils juridiques pour faire évoluer les choses.",
        "Bill Clinton prônera le dialogue et l'engagement constructif avec les dirigeants chinois qu'il va bientôt rencontrer.",
        "Des échantillons et des analyses moléculaires sur le produit sont systématiquement réalisés, à lentrée de lusine ou en cours de façonnage.",
        "Les frais d'hébergement des participants étudiants seront pris en charge par le comité d'organisation de l'Université Européenne d'Eté.",
        "Le fondement d'une nation, c'est aussi une histoire.",
        "Quand on fait un peu de théologie, on s'aperçoit que le Père, il n'est créé par personne.",
        "L' e-Working n'en est qu'à ses balbutiements; c'est le rôle des entreprises et des organisations mondiales de lui faire atteindre sa pleine maturité.",
        "On peut également s'y familiariser avec les différentes étapes de la production de champagne.",
        "Nous avons décidé - de ne pas opter pour un être humain unique monolithique, momifié, sanctifié, robotique et sans âme.",
    ),
    "de": (
        "Gelli habe sich kürzlich bei einem Sturz zwei Wirbel gebrochen.",
        "Für das leibliche Wohl sorgte das bewährte Kochteam aus Mitgliedern der Landjugend.",
        "Dann habe ich auch noch ein paar Freunde verloren.",
        "Auf dem Tablett in eisenroter Malerei zwei Damen vor einem Gasthaus, im Hintergrund eine Reiter, dem eine Blumenverkäuferin einen Strauß anbietet.",
        "Der Bow Street zugewandt, liegt auf der Ostseite der Piazza das Royal Opera House, die Heimat des Royal Ballet und der Royal Opera.",
        "Auch erinnerte der Bürgermeister an die Wiederherstellung des Forstpfades durch die beiden.",
        "Paul & Mary dermaßen ergreifend rüber als wäre der Begriff Rock n Roll tatsächlich mehr als nur ein Wort der Werbewirtschaft.",
        "Diese energiesparende Technik trägt erheblich zur Milderung des Treibhauseffekts bei.",
        "ADRA Deutschland e.V. ist eine vom Staat unabhängige, selbständige Organisation der protestantischen Freikirche der Siebenten-Tags-Adventisten.",
        "Amerika und Japan sind die wichtigsten Abnehmerländer.",
    ),
    "es": (
        "La donacin de mdula es una tontera, nada peligrosa.",
        "Adems todo apunta a que se va a centrar en el mbito mdico.",
        "Segn su representante la ruptura tuvo lugar unos das antes de las Navidades.",
        "Richard y Victoria se sorprendieron al conocer la verdad: su hijo estaba vivo!",
        "Por lo tanto se cree que ha sido un acto poltico contra los pases de Malasia y China.",
        "No hay lmites de proyectos de investigacin para difundir y el servicio es gratuito.",
        "Desde hace como un ao han modificado la masa y los ingredientes y hay que decir que estn de lo ms ricas.",
        "Esta nueva tendencia ha sido creada por la maquilladora israel Tal Peeg, que es capaz de crear una autntica obra de arte en los prpados.",
        "Un espacio en el que el agua termal es la protagonista en un ambiente mgico dividido en tres zonas principales: Baos, Fitness y Relajacin.",
        "Las universidades y el resto de centros dedicados a impartir el ms alto nivel..",
    ),
    "pt": (
        "Certifique-se de que o bairro não irá crescer de forma descontrolada, perdendo o seu carácter residencial.",
        "Quando o chocolate estiver derretido, misturar bem e retirar do lume.",
        "Com essa comparação pode-se pensar que, pelo menos, a estrela à volta da qual orbitamos tem uma dimensão apreciável no contexto do Universo.",
        "“Inicialmente, as situações oncológicas que nos chegavam eram situações mais tardias.",
        "“O programa “Escola Segura” funciona nas nossas escolas e há cada vez menos violência.",
        "Não pode utilizar conteúdo dos nossos Serviços, salvo mediante autorização do respetivo proprietário ou em circunstâncias permitidas por lei.",
        "A DGT actualiza calendário de leilões A Direção Geral do Tesouro (DGT) actualiza calendário de leilões.",
        "Ao avistar a praia a conclusão é óbvia: gente descontraída, gosto pelo culto do corpo e pela diversão.",
    ),
    "it": (
        "Imprese all'estero con il Temporary Export Manager.",
        "E lo sa quanti anni dovranno aspettare per incassare gli stipendi arretrati e le liquidazioni?",
        "La trattativa per il rinnovo contrattuale è bloccata e prende corpo l’ipotesi di uno sciopero nel periodo natalizio.",
        "Rimini, notte di sangue: Antonio Carbonara non viene riconosciuto dai testimoni - Libertas.smSan Marino.",
        "La stabilizzazione interessa insegnanti di ogni ordine e grado: dalla scuola di infanzia alla media superiore.",
        "Paese in situazione drammatica: Movimento Per San Marino San Marino.",
        "Piove: la mobilità provinciale va subito in crisi.",
        "Allora il numero uno Aia lancia la proposta ai colleghi: «Non accettate gruppi (sociali o di altro genere) a queste tariffe.",
    ),
    "ru": (
        "Расследованием случившегося занялись правоохранительные органы.",
        "Гипотезы всегда насыщали любое мое фантастическое произведение, но, конечно, отнюдь не были самоцелью.",
        "Вот что было для меня самым ценным, самым удивительным открытием.",
        "Мотор урчит, мы на скамеечках в открытом кузове сидим, по сторонам смотрим.",
        "Кажется, мама за эти три года не притрагивалась к его бумагам.",
        "Только совсем недавно я обнаружил одну жуткую вещь.",
        "Давайте продолжим разговор на эту тему и вместе поищем ответ.",
        "Эту службу отличает целенаправленность, пояснил Мак.",
        "Помните, гангстеры в начале картины похищают ученого из секретной, за семью замками, лаборатории?",
        "На смену могучему и радостному перекатывающемуся колокольному звону, славившему Москву, пришел « жидкий звон, постный звон».",
    ),
    "zh": (
        "正当紫曜星要开口之际，游侠将手一举，五指张开，火焰从指尖窜烧而出，一条宛如巨蛇般的长型火焰奔流灼烧，烈火全都朝著水晶墙撞击而去。",
        "在第三期读书会前举步维艰的时候，这位同学主动发来短信，貌似很轻松地说：“我们能有什么事。",
        "建议您可汇入「最高愿意出价金额」，或一次汇入较高的款项，以避免因余额不足，系统无法为您所下标之商品加价。",
        "果然就像野吕先生所说的，头箍的魔咒及抽痛的现象在手术后的两个月便完全消失了。",
        "这不但意味著虫族真的存在过，还间接证实了忒米尔之前的猜测……难道高等级龙族的诞生，真的是帕尔兰大陆的人类为了对抗虫族才开发出来的生化兵器么？",
        "艾未未接受自由亚洲电台电话访问时表示，对于港人的支持感到「很感动」。",
        "我最起码当下可以想到数十种逼他撤剑，或者趁隙削他手指的打法，但是面对这种虔诚，反而这种打斗方式就显得卑鄙无耻，不尊重决斗了。",
        "这就使它保住了客户，甚至得到更多客户；因为省下的钱足够补偿他们得不到想要的法庭的损失。",
        "本中心会告诉您所有的治疗方法，回答您所有的问题，并提供正确而且最新的医学知识，让您自己做一个明智的选择。",
        "我去洗脸去……谁叫你是我真正喜欢的呢……」我扮无奈的模样说。",
    ),
    "ja": (
        "見た目やセミみたいに視認性は高くないものの、きっと愛用なんだろうなと思っています。",
        "そのような会社を避けるためには、仕事を探す時点で労働条件や福利厚生などを見極めてください。",
        "食物繊維やさまざまな栄養の宝庫の国産十八雑穀は、お米と混ぜて炊いてご飯として食べるだけでなく、今回のようにおかずにしても美味しくいただけます。",
        "登録とは数回やりとりをしただけでしたが、年齢におすすめの今から会える人い系とは、もしかしたらその行き先で出会いがあるかもしれませんし。",
        "学生なので利益がない結果高級感の漂う企画を勧誘されるリスクも速くすみます。",
        "処方可と診断された後は、薬の用法用量をきちんと守って飲用すれば、何も心配なく利用することができます。",
        "いつもは何もしない人が役立つことをした際は目標が降るから気をつけなくちゃなんて言われた経験があります。",
        "リュウグウ王国でも白ひげは友人だからと無償で旗を貸したけど、マムは取引によるものでした。",
    ),
    "ko": (
        "보커스 위원장은 또 미국의 교역상대국들은 소의 연령을 더이상 쇠고기 수입을 제한하는 수단으로 사용할 수 없다면서 그런 제한은 과학적으로 뒷받침되지 않기 때문에 국제무역규정에 위배된다고 말했다.",
        "이행 과정에서 난항은 있을 수 있지만 연내에 신고가 제대로 이행될 경우 연내 신고할 대상에서는 빠진 것으로 알려진 북한 핵무기(또는 핵폭발장치)를 제외한 북한의 모든 핵 역량은 낱낱이 공개된다.",
        "정통부 관계자는 이와 관련, 이미 정보통신윤리위원회 내에 `불법.청소년유해정보신고센터'를 운영하고 있기 때문에 별도로 인터넷성매매 신고센터를 운영할 필요가 없기 때문이라고 설명했다.",
        "이성두(테일러메이드)가 한국프로골프(KPGA)투어 레이크힐스오픈에서 첫날 단독 선두에 나섰다.",
        "하지만 철도역사를 현대화한다며 세워지고 있는 민자역사들은 오히려 서비스 품질 면에서 일반 역사에 뒤떨어지는 것으로 나타나고 있다.",
        "우리의 안전을 지켜 주기 때문에 우리를 구속도 하는 답답한 국가 안에서는 내 가족이 설사 부당하게 살상당해도 가해자에게 보복할 권리는 내게 없다.",
        "조너선 색스는 자유주의 혹은 신자유주의의 맹점에 대한 통찰력 있는 지적으로부터 세계화의 문제에 대한 이론적 해법을 모색한다.",
        "보안 프로그램이 실행되면 이를 탐지해 우회하거나 안티바이러스 진단 화면과 경고음을 꺼버리는 자기 보호 기법도 동원한다.",
    ),
    "ar": (
        "تقوم مصلحة الاستخدام بالمبادرات وباستطاعتها مساعدة الباحثين عن العمل على الحصول على المؤهلات.",
        "تمثيل المراكز باللجان البرلمانية واللجنة الاستشارية لمكانة المراة في إسرائيل.",
        "التجسـس والإرهاب والتطـرف والجرائـم يتم تنفيذها فى العادة عبـر الحدود الدوليـة للدول.",
        "وعلى جدول أعمالنا ستُطرح في القريب العاجل قرارات سياسية يجب حسمها من أصعب القرارات في تاريخ الدولة.",
        "وقد تسنى لي أن استمع إلى حوار له مع لفيف من الحضور، وكنت واقفًا معهم ، فلم أستلطفه وهو يدفع بألفاظه دفعًا.",
        "قليلة من الفوسفور والحديد والمغنزيوم ونسبة من المواد الدهنية.",
        "قالت: (كان في مهنة أهله فإذا حضرت الصلاة قام إلى الصلاة).",
        " أدعوكم إلى الخروج معا في رحلة نعيش في نهايتها تجربة كيفية أن يتحول الخيال إلى واقع",
    ),
    "hi": (
        "Google, संयुक्त राज्य अमेरिका और अन्य देशों में हमारे सर्वर पर व्यक्तिगत जानकारी संसाधित करता है.",
        "इस बात की गारंटी भी नहीं कि कोई कसम खाने के बाद ऐसा काम नहीं करेगा..",
        "इससे अच्छे तो वह लोग होते हैं जो महिलाओं का सम्मान नहीं करते बल्कि उनके साथ बराबरी का व्यवहार करते हैं ।",
        "मध्‍य प्रदेश भी अब लड़कियों के लिये असुरक्षित होता जा रहा है।",
        "पूरी रात के सफ़र को मैनें आँखों ही आँखों में काट दिया था.",
        "आपने बताया कि प्रोजेक्ट में तीन गाँव हैं तीनों गाँव की जो भूमि अर्जन करना है वह हम कर चुके हैं.",
        "युवाओं को रोजगार के लिए भटकना हो और कानून व्यवस्था के नाम पर खानापूर्ति तो कैसे आगे बढ़ेगा उत्तर प्रदेश?",
        "एक महीना कई महीनों में बीता और कई महीने दो साल में।",
    ),
    "el": (
        "Για να μπούμε σε τεχνικά θέματα, είναι ένα είδος «αποτροπαϊκής» μαγείας, κάτι που έχει ως πρόθεση να τρομάξει το κακό.",
        "Να ξεχάσω πως είσαι όλος ο κόσμος για μένα, και να φτιάξω στα αποκαϊδια καινουργιο..",
        "Ο ιερέας υπηρετούσε στην ελληνορθόδοξη εκκλησία του προφήτη Ηλία στην Καλιφόρνια.",
        "Θέλω να τονίσω πως υπάρχουν στιγμές που όλα πηγαίνουν καλά.",
        "Αυτοκόλλητο Διακοσμητικό Παράθυρου Χιόνι Διακοσμήστε μοναδικά το χωρο του πάρτι με υπέροχα διακοσμητι.",
        "Η πρώτη γενιά δεν ενδιαφέρεται τόσο για την χαμένη γλώσσα, καθώς τα μέλη της εξακολουθούν να μοχθούν για την καθιέρωση τους στη νέα κοινότητα.",
        "Μίμης Ανδρουλάκης: «Γράμμα σε σκεπτόμενο πατριώτη» «Αγαπητή φίλη, φίλε παίρνω το θάρρος να απευθυνθώ σ’..",
        "Κατευθύνσεις, τεχνικές και προϋποθέσεις μπορούν να βοηθήσουν στο χτίσιμο γερών θεμελίων, για μία αλλαγή με διάρκεια.",
    ),
}

FOREIGN = ("fr", "de", "es", "pt", "it", "ru", "zh", "ja", "ko", "ar", "hi", "el")
SHARES = (0.05, 0.07, 0.1, 0.15, 0.25, 0.4)
COLUMNS = (
    "candidate_id string, source string, kind string, domain string, language string, "
    "completion string, reasoning_content string, finish_reason string"
)

# Math, code and numbers that must never read as another language.
NOISE = (
    r"$f(x) = \frac{x^2 + 3x - 10}{x - 2}$, $\alpha_k = \sum_{i=1}^{k} \binom{k}{i}$.",
    r"\[ \int_0^{\pi} \sin^2 \theta \, d\theta = \frac{\pi}{2} \]",
    "1234.56 + 789 = 2023.56; 3/4 = 0.75; 17 × 23 = 391.",
    "`count_pairs(xs, k)` → `len(seen)`, `xs[i] + xs[j] == k`.",
    r"$$\begin{aligned} a &= b + c \\ d &= \sqrt{e} \end{aligned}$$",
    "π r² = 28.27 (r = 3), Δx → 0, θ = 45°.",
    "\\(x_{n+1} = x_n - f(x_n)/f'(x_n)\\)",
)


def _sentences(source: dict[str, tuple[str, ...] | list[str]], lang: str) -> tuple[str, ...] | list[str]:
    return source[lang]


def _joiner(lang: str) -> str:
    return "" if lang in ("zh", "ja") else " "


def build_reasoning(
    rng: random.Random, pool: dict, target: str, share: float, mode: str, noise: bool = False
) -> tuple[str, str | None, float]:
    """Paragraphs of target sentences with foreign sentences at ``share`` of the characters."""
    paragraphs = []
    total = 0
    goal = rng.randint(1200, 3500)
    while total < goal:
        paragraph = _joiner(target).join(rng.choice(pool[target]) for _ in range(rng.randint(2, 4)))
        if noise and rng.random() < 0.6:
            paragraph += " " + rng.choice(NOISE)
        paragraphs.append(paragraph)
        total += len(paragraph)
    if noise:
        paragraphs.insert(1, "```python\nfor i in range(10):\n    print(i * i)\n```")
    if share == 0:
        return "\n\n".join(paragraphs), None, 0.0
    foreign = rng.choice([lang for lang in pool if lang != target and lang in FOREIGN + ("en",)])
    chosen: list[str] = []
    base = len("\n\n".join(paragraphs))
    while sum(map(len, chosen)) < share * (base + sum(map(len, chosen))):
        chosen.append(rng.choice(pool[foreign]))
    if mode == "paragraph":
        paragraphs.insert(rng.randrange(len(paragraphs) + 1), _joiner(foreign).join(chosen))
    else:
        for sentence in chosen:
            index = rng.randrange(len(paragraphs))
            paragraphs[index] = paragraphs[index] + " " + sentence
    text = "\n\n".join(paragraphs)
    return text, foreign, sum(map(len, chosen)) / len(text)


def labeled_rows(pool: dict, rows: int, seed: int, targets: tuple[str, ...]) -> list[tuple]:
    rng = random.Random(seed)
    out = []
    for index in range(rows):
        target = targets[index % len(targets)]
        share = 0.0 if index % 2 == 0 else rng.choice(SHARES)
        noise = index % 4 == 0  # half of the clean rows carry LaTeX, code and numbers
        text, foreign, actual = build_reasoning(
            rng, pool, target, share, rng.choice(("paragraph", "inline")), noise
        )
        domain = "code" if noise else "math"  # the noise holds a fenced block: allowed in code
        completion = f"<think>\n{text}\n</think>\n\n{rng.choice(pool[target])}"
        out.append(
            (f"c{index}", "labeled", "reasoning", domain, target, completion, None, "stop", actual, foreign)
        )
    return out


def score_mixed(runtime, rows: list[tuple]) -> dict:
    rt = runtime
    frame = rt.spark.createDataFrame([r[:8] for r in rows], COLUMNS)
    params = AnnotateParams()
    out = frame.transform(annotate_candidates, params).transform(decide_annotate, params)
    predicted = {
        r.candidate_id: "mixed_language" in r.reject_reasons
        for r in out.select("candidate_id", "reject_reasons").collect()
    }
    truth = {r[0]: r[8] >= 0.05 for r in rows}
    tp = sum(1 for k, v in truth.items() if v and predicted[k])
    fp = [r for r in rows if not truth[r[0]] and predicted[r[0]]]
    fn = [r for r in rows if truth[r[0]] and not predicted[r[0]]]
    noisy_fp = [r for r in fp if r[3] == "code"]
    return {
        "precision": tp / max(1, tp + len(fp)),
        "recall": tp / max(1, tp + len(fn)),
        "fp": [(r[0], r[4]) for r in fp],
        "fn": [(r[0], r[4], r[9], round(r[8], 3)) for r in fn],
        "noisy_fp": len(noisy_fp),
        "positives": sum(truth.values()),
        "rows": len(rows),
    }


def test_mixed_language_precision_recall_on_embedded_sentences(runtime_factory) -> None:
    rows = labeled_rows(SENTENCES, rows=160, seed=11, targets=("en", "en", "fr", "de", "ru", "zh"))
    figures = score_mixed(runtime_factory(), rows)
    assert figures["positives"] >= 70
    assert figures["noisy_fp"] == 0, figures
    assert figures["precision"] >= 0.95, figures
    assert figures["recall"] >= 0.95, figures


@pytest.mark.skipif(not SENTENCE_FILE.exists(), reason="needs ../shared/realdata (developer machines only)")
def test_mixed_language_precision_recall_on_leipzig_file(runtime_factory) -> None:
    pool: dict[str, list[str]] = {}
    with SENTENCE_FILE.open() as stream:
        for line in stream:
            record = json.loads(line)
            if record["lang"] in FOREIGN + ("en", "nl", "pl", "tr", "sv", "vi", "uk"):
                pool.setdefault(record["lang"], []).append(record["text"])
    rows = labeled_rows(
        pool, rows=300, seed=5, targets=("en", "en", "en", "fr", "de", "es", "ru", "zh", "ja")
    )
    figures = score_mixed(runtime_factory(), rows)
    assert figures["noisy_fp"] == 0, figures
    assert figures["precision"] >= 0.95, figures
    assert figures["recall"] >= 0.95, figures


# --- pure functions -------------------------------------------------------------------------------


def test_fasttext_predict_shapes_we_rely_on() -> None:
    model = language.load_model()
    assert model is language.load_model()  # loaded once per process
    labels, probabilities = model.predict("The cat sat on the mat and looked out of the window.")
    assert labels == ("__label__en",) and 0.5 < probabilities[0] <= 1.0
    # fasttext-predict: a list gives labels only, no probabilities; identify() calls predict per text.
    listed = model.f.multilinePredict(["Bonjour tout le monde\n", "Guten Tag allerseits\n"], 1, 0.0, "strict")
    assert listed == [["__label__fr"], ["__label__de"]]
    raw = model.f.predict("Guten Tag allerseits, wie geht es euch heute?\n", 1, 0.0, "strict")
    assert isinstance(raw, list) and isinstance(raw[0][0], float) and raw[0][1] == "__label__de"
    assert language.identify(model, "Это предложение написано по-русски.")[0] == "ru"


def test_split_think_shapes() -> None:
    tagged = split_think("<think>\nstep one\n</think>\n\nThe answer is 4.")
    assert (tagged.reasoning, tagged.answer, tagged.think_format) == (
        "step one",
        "The answer is 4.",
        "tagged",
    )
    assert split_think("no tags at all").think_format == "none"
    assert split_think("reasoning only</think>answer").think_format == "open_in_prompt"
    unclosed = split_think("<think>we ran out of tok")
    assert (unclosed.think_format, unclosed.answer) == ("unclosed", "")
    assert split_think("<think>a</think><think>b</think>c").think_format == "multiple"
    assert split_think("preface <think>a</think>b").think_format == "misplaced"
    separate = split_think("Final: 3", "I reason here")
    assert (separate.reasoning, separate.answer, separate.think_format) == (
        "I reason here",
        "Final: 3",
        "separate",
    )
    sky = split_think(
        "<|begin_of_thought|>x<|end_of_thought|>\n<|begin_of_solution|>\nAnswer 5\n<|end_of_solution|>"
    )
    assert (sky.reasoning, sky.answer, sky.think_format) == ("x", "Answer 5", "tagged")
    assert split_think(None).answer == ""


def test_math_code_and_numbers_are_not_language() -> None:
    text = " ".join(NOISE) + "\n```python\nprint('bonjour le monde')\n```"
    clean = language.strip_non_language(text)
    assert (
        "frac" not in clean and "1234" not in clean and "count_pairs" not in clean and "bonjour" not in clean
    )
    ids = scripts.script_ids(scripts.code_points(language.strip_non_language("Then π r² with Δx and θ.")))
    assert scripts.histogram(ids) == {"Latin": 11}  # lone letters (π, Δ, θ, r, x) are symbols
    assert scripts.histogram(scripts.script_ids(scripts.code_points("Это 中文 ελληνικά"))) == {
        "Cyrillic": 3,
        "Han": 2,
        "Greek": 8,
    }


def test_code_detection_keeps_math_out() -> None:
    math = "If $x > 3$ then x = 4.\nSo f(x) = 2x + 1, and for x in the set S we get:\n\\end{aligned}"
    assert code_blocks.find_code(math).blocks == []
    fenced = code_blocks.find_code("Check:\n```python\ndef f(x):\n    return x\n```\nDone.")
    assert fenced.fenced_blocks == 1 and fenced.language == "python"
    indented = code_blocks.find_code(
        "Compute:\n\n    def check(x):\n        return x * x\n\n    print(check(3))\n"
    )
    assert [b[2] for b in indented.blocks] == ["indented code, 3 lines"]
    bare = code_blocks.find_code('#include <stdio.h>\nint main() {\n  printf("hi");\n  return 0;\n}\n')
    assert bare.blocks and bare.language == "cpp"


def test_repetition_finds_loops_not_prose() -> None:
    loop = "\n\n".join(["Wait, let me recompute the sum of the first terms again."] * 30)
    text = "We start with the setup of the problem and define every quantity.\n\n" + loop
    figures = repetition.measure(text, 10)
    assert figures.longest_chars > 1000 and figures.max_repeats >= 25
    assert text[figures.start : figures.end].startswith("Wait") or text[
        figures.start : figures.end
    ].startswith("let")
    prose = " ".join(SENTENCES["en"])
    assert repetition.measure(prose, 10).longest_chars == 0
    cjk = repetition.measure("我们再算一遍这个和。" * 40, 10)
    assert cjk.longest_chars > 300


def _fragments_text(rng: random.Random, fragments: tuple[str, ...], most: int) -> str:
    return "".join(rng.choice(fragments) + rng.choice(("", " ")) for _ in range(rng.randrange(1, most)))


STRIP_FRAGMENTS = (
    "the",
    "and",
    "x",
    "I",
    "let's",
    "'",
    "’",
    ",",
    ".",
    "!",
    "?",
    "\n",
    "\t",
    "\r",
    "`",
    "```python",
    "```",
    "~~~",
    "$",
    "$$",
    "\\[",
    "\\]",
    "\\(",
    "\\)",
    "\\begin{aligned}",
    "\\end{x}",
    "\\frac",
    "http://a.b/c",
    "www.x.org",
    "134.33",
    "7",
    "٣",
    "=",
    "+",
    "{",
    "}",
    "é",
    "中文",
    "def f(x):",
    "x = 1;",
    "le chat",
    "\x1b",
)


def test_fast_stripping_is_the_reference_pattern() -> None:
    """The first-character form of NON_LANGUAGE and the lone letters counted as tokens change no figure."""
    rng = random.Random(7)
    texts = [_fragments_text(rng, STRIP_FRAGMENTS, 30) for _ in range(3000)] + list(NOISE)
    for text in texts:
        reference = language._LONE_LETTER.sub(" ", language.NON_LANGUAGE.sub(" ", text))
        assert language.strip_non_language(text, code_lines=False) == reference, repr(text)
        kept = language._strip_keeping_letters(text, False)
        fast = language._settle_ascii_texts([kept], language._FUNCTION_WORDS_PACKED["en"], 20)[0]
        if fast is not None:
            total, settled, pending = language._settle(reference, "en", True, 20)
            assert fast[:2] == (total, settled), repr(text)
            assert [(s.strip(), n) for s, n, _ in fast[2]] == [(s.strip(), n) for s, n, _ in pending], repr(
                text
            )


def test_ascii_settling_of_many_texts_in_one_call_is_the_reference() -> None:
    """One compiled call over a reasoning's paragraphs gives each text the regex ``_settle``'s figures:
    nothing leaks across the texts' bounds (empty texts, texts ending in a sentence end included)."""
    rng = random.Random(11)
    texts = [_fragments_text(rng, STRIP_FRAGMENTS, 30) for _ in range(400)] + ["", ".", "\n"] + list(NOISE)
    rng.shuffle(texts)
    kept = [language._strip_keeping_letters(text, False) for text in texts]
    words = language._FUNCTION_WORDS_PACKED["en"]
    batched = language._settle_ascii_texts(kept, words, 20)
    assert sum(figures is not None for figures in batched) > 150  # the rest hold non-ASCII or unsafe characters
    for text, clean, figures in zip(texts, kept, batched, strict=True):
        assert figures == language._settle_ascii_texts([clean], words, 20)[0], repr(text)
        if figures is None:
            continue
        total, settled, pending = language._settle(language._LONE_LETTER.sub(" ", clean), "en", True, 20)
        assert figures[:2] == (total, settled), repr(text)
        assert [(s.strip(), n) for s, n, _ in figures[2]] == [(s.strip(), n) for s, n, _ in pending], repr(text)


def test_paragraphs_analysed_together_match_one_at_a_time() -> None:
    """``analyse_texts`` (a reasoning's paragraphs in one call) gives each text ``analyse_text``'s figures."""
    rng = random.Random(5)
    pieces = (*SENTENCES["en"], *SENTENCES["fr"], *SENTENCES["zh"], "Wait.", "x = 1", "a b c", "", "\t")
    texts = ["\n".join(rng.choice(pieces) for _ in range(rng.randrange(0, 6))) for _ in range(120)]
    model = language.load_model()
    settings = language.LanguageSettings()
    for target in ("en", "zh", None):
        together = language.analyse_texts(model, texts, target, settings)
        alone = [language.analyse_text(model, text, target, settings) for text in texts]
        assert together == alone
    figures = language.analyse_texts(model, texts, "en", settings)
    assert any(f.foreign_letters for f in figures) and any(f.label == "en" and not f.foreign_letters for f in figures)


def test_function_words_settle_english_only_in_latin_script() -> None:
    assert language.settled_without_model("Maybe the answer is there, though we should check it", "en")
    mixed = " शहर जाने वाली ट्रेन हर सुबह सात बजे निकलती है। The statements of Arjun and Vera cannot both be true"
    assert not language.settled_without_model(mixed, "en")  # a danda is no sentence end for us
    figures = language.analyse_text(language.load_model(), mixed, "en", language.LanguageSettings())
    assert figures.foreign_label == "hi" and figures.foreign_letters > 0


def _content_hash_plain(text: str) -> int:
    """The compiled content hash the plain way: str.split() drops whitespace, A-Z folded, FNV-1a over
    code points, splitmix64's finalizer, as a signed 64-bit int; 0 for no non-space character."""
    mask = (1 << 64) - 1
    content = "".join(text.split())
    if not content:
        return 0
    value = 0xCBF29CE484222325
    for char in content:
        value = ((value ^ ord(char.lower() if "A" <= char <= "Z" else char)) * 0x100000001B3) & mask
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & mask
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & mask
    value ^= value >> 31
    return value - (1 << 64) if value >= 1 << 63 else value


def test_content_hash_ignores_whitespace_and_ascii_case_only() -> None:
    same = ["The answer is 4.", "the  answer\u00a0is\n4.\u3000", "THEANSWERIS4.", " theansweris4. "]
    hashes = {repetition.measure(text, 10).content_hash for text in same}
    assert len(hashes) == 1 and hashes != {0}
    different = ["The answer is 5.", "The answer is 4!", "Ünd", "ünd", "答案是4", "答案是5"]
    assert len({repetition.measure(text, 10).content_hash for text in different}) == len(different)
    assert repetition.measure(" \n\t\u3000", 10).content_hash == 0 == repetition.measure("", 10).content_hash
    assert candidate_signals.response_hash(0, 0) == 0
    pair = candidate_signals.response_hash(11, 22)
    assert pair not in (0, candidate_signals.response_hash(22, 11), candidate_signals.response_hash(11, 23))


def _repetition_by_tuples(text: str, n: int) -> dict:
    """repetition.measure's figures the slow, plain way: tokens by str.split, n-grams as tuples."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    tokens = [text[s:e] for s, e in spans]
    figures = {"duplicate_share": 0.0, "longest_chars": 0, "max_repeats": 0, "start": 0, "end": 0}
    figures["content_hash"] = _content_hash_plain(text)
    if len(tokens) <= n:
        return figures
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    figures["max_repeats"] = max(collections.Counter(grams).values())
    if figures["max_repeats"] == 1:
        return figures
    seen: set[tuple[str, ...]] = set()
    duplicates = []
    for i, gram in enumerate(grams):
        if gram in seen:
            duplicates.append(i)
        seen.add(gram)
    covered = {t for i in duplicates for t in range(i, i + n)}
    figures["duplicate_share"] = sum(len(tokens[t]) for t in covered) / sum(map(len, tokens))
    runs: list[list[int]] = []
    for i in duplicates:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    run = max(runs, key=len)  # the first of the longest
    first, last = run[0], run[-1] + n - 1
    figures["longest_chars"] = sum(len(tokens[t]) for t in range(first, last + 1)) + last - first
    if figures["longest_chars"] >= repetition.MIN_SPAN_CHARS:
        figures["start"], figures["end"] = spans[first][0], spans[last][1]
        figures["longest_chars"] = figures["end"] - figures["start"]
    return figures


def test_compiled_repetition_agrees_with_plain_tuples_and_cached_verdicts_change_nothing() -> None:
    rng = random.Random(3)
    words = ("we", "sum", "the", "terms", "again", "wait", "so", "x", "étape", "再")
    texts = [" ".join(rng.choice(words) for _ in range(rng.randrange(0, 400))) for _ in range(300)]
    texts += ["Wait, let me recompute the sum again.\n\n" * k + "So x = 4." for k in range(0, 40, 3)]
    for text in texts:
        got = vars(repetition.measure(text, 10))
        expected = _repetition_by_tuples(text, 10)
        assert got == pytest.approx(expected), text[:80]
    assert sum(repetition.measure(t, 10).end > 0 for t in texts) >= 10  # spans were compared too
    model = language.load_model()
    for sentence in ("Le chat dort sur le canapé depuis ce matin", "Der Hund schläft im Garten"):
        assert language.identify_cached(model, sentence) == language.identify(model, sentence)
        assert language.identify_cached(model, sentence) == language.identify(model, sentence)


# --- the stage on both engines --------------------------------------------------------------------

CLEAN = "\n\n".join(" ".join(SENTENCES["en"][i : i + 3]) for i in range(0, 12, 3))  # 4 paragraphs
LONG_PARAGRAPH = " ".join(SENTENCES["en"][12:])  # ~2,400 characters, no blank line (limit 2,000 below)
LOOP = "\n\n".join(["Let me double check the value of the second term once more."] * 40)
# 10 MB: mostly math, so the test pays for the size (Arrow, split, repetition) and not for 10 MB of LID.
BIG = (
    CLEAN
    + "\n\n"
    + "\n\n".join(f"$x_{{{i % 97}}} + y_{{{i % 89}}} = {i % 1013}$ " * 8 for i in range(55_000))
)


def _think(reasoning: str, answer: str = "The answer is 12.") -> str:
    return f"<think>\n{reasoning}\n</think>\n\n{answer}"


CASES: list[tuple[tuple, set[str]]] = [
    (("clean", "s", "reasoning", "math", "en", _think(CLEAN), None, "stop"), set()),
    (
        (
            "mixed",
            "s",
            "reasoning",
            "math",
            "en",
            _think(CLEAN + "\n\n" + " ".join(SENTENCES["zh"][:4])),
            None,
            "stop",
        ),
        {"mixed_language"},
    ),
    (
        (
            "latin_pair",
            "s",
            "reasoning",
            "math",
            "en",
            _think(CLEAN.replace("\n\n", " " + SENTENCES["fr"][0] + "\n\n", 2)),
            None,
            "stop",
        ),
        {"mixed_language"},
    ),
    (
        (
            "zh_target",
            "s",
            "reasoning",
            "math",
            "zh-CN",
            _think("\n\n".join(SENTENCES["zh"]), SENTENCES["zh"][0]),
            None,
            "stop",
        ),
        set(),
    ),
    (
        (
            "wrong_lang",
            "s",
            "reasoning",
            "math",
            "en",
            _think(CLEAN, SENTENCES["de"][0] + " " + SENTENCES["de"][1]),
            None,
            "stop",
        ),
        {"wrong_language"},
    ),
    (("translation", "s", "non_reasoning", "translation", "en", SENTENCES["fr"][2], None, "stop"), set()),
    (
        (
            "code_in_math",
            "s",
            "reasoning",
            "math",
            "en",
            _think(CLEAN + "\n\n```python\nprint(sum(range(10)))\n```"),
            None,
            "stop",
        ),
        {"code_block"},
    ),
    (
        (
            "code_in_code",
            "s",
            "reasoning",
            "code",
            "en",
            _think(CLEAN + "\n\n```python\nprint(sum(range(10)))\n```"),
            None,
            "stop",
        ),
        set(),
    ),
    (
        ("long_para", "s", "reasoning", "math", "en", _think(CLEAN + "\n\n" + LONG_PARAGRAPH), None, "stop"),
        {"long_paragraph"},
    ),
    (("loop", "s", "reasoning", "math", "en", _think(CLEAN + "\n\n" + LOOP), None, "stop"), {"repetition"}),
    (("truncated", "s", "reasoning", "math", "en", "<think>\n" + CLEAN, None, "length"), {"truncated"}),
    (("length_sep", "s", "reasoning", "stem", "en", "", CLEAN, "length"), {"truncated"}),
    (
        ("multiple", "s", "reasoning", "math", "en", _think(CLEAN) + "<think>more</think>x", None, "stop"),
        {"malformed_think"},
    ),
    (("no_think", "s", "reasoning", "math", "en", "The answer is 12.", None, "stop"), {"malformed_think"}),
    (("empty_answer", "s", "reasoning", "math", "en", _think(CLEAN, ""), None, "stop"), {"empty_answer"}),
    (("none", "s", "reasoning", "math", "en", None, None, None), {"malformed_think", "empty_answer"}),
    (("chat", "s", "non_reasoning", "writing", "en", SENTENCES["en"][3], None, "stop"), set()),
    (
        ("no_target", "s", "reasoning", "math", None, _think(" ".join(SENTENCES["ru"][:3])), None, "stop"),
        set(),
    ),
    (("big", "s", "reasoning", "math", "en", _think(BIG), None, "stop"), {"repetition", "too_long"}),
]


def _reference(params: AnnotateParams) -> dict[str, dict]:
    """The signals computed in this process, without any engine: what both engines must return."""
    settings = signal_settings(params)
    items = [(row[5], row[6], row[4]) for row, _ in CASES]
    names = [name for name, _ in SIGNAL_FIELDS]
    return {
        row[0]: dict(zip(names, values, strict=True))
        for (row, _), values in zip(CASES, signals_for_rows(items, settings), strict=True)
    }


def test_annotate_reasons_spans_and_same_signals_on_both_engines(runtime_factory) -> None:
    rt = runtime_factory(annotate__long_paragraph__max_chars=2000)
    params = rt.config.annotate
    frame = rt.spark.createDataFrame([row for row, _ in CASES], COLUMNS)
    out = frame.transform(annotate_candidates, params).transform(decide_annotate, params)
    rows = {r.candidate_id: r.asDict(recursive=True) for r in out.drop("completion").collect()}
    expected = {row[0]: reasons for row, reasons in CASES}
    assert {k: set(v["reject_reasons"]) for k, v in rows.items()} == expected
    reference = _reference(params)
    for key, row in rows.items():
        for name, kind in SIGNAL_FIELDS:
            got, want = row[name], reference[key][name]
            if kind == "spans":
                want = [{"reason": r, "start": s, "end": e, "detail": d} for r, s, e, d in want]
            elif kind == "scripts":
                want = [{"script": s, "letters": n} for s, n in want]
            assert got == want, (key, name)
        # spans: exactly the signal spans whose reason fired
        assert row["spans"] == [s for s in row["signal_spans"] if s["reason"] in row["reject_reasons"]]
    mixed = rows["mixed"]
    (span,) = mixed["spans"]
    reasoning = mixed["reasoning"]
    assert (
        span["detail"].startswith("reasoning: paragraph 4, zh")
        and SENTENCES["zh"][0] in reasoning[span["start"] : span["end"]]
    )
    (code_span,) = rows["code_in_math"]["spans"]
    assert rows["code_in_math"]["reasoning"][code_span["start"] : code_span["end"]].startswith("```python")
    assert rows["big"]["reasoning_chars"] > 10_000_000
    # Dedup's duplicate responses compare these: equal exactly when reasoning and answer are equal
    # without whitespace (code_in_math and code_in_code share their text), 0 for none, 64 bits kept.
    content = {k: ("".join((r["reasoning"] or "").split()), "".join((r["answer"] or "").split())) for k, r in rows.items()}
    for (k1, r1), (k2, r2) in itertools.combinations(rows.items(), 2):
        assert (r1["response_hash"] == r2["response_hash"]) == (content[k1] == content[k2]), (k1, k2)
    assert all((r["response_hash"] == 0) == (content[k] == ("", "")) for k, r in rows.items())
    assert rows["code_in_math"]["response_hash"] == rows["code_in_code"]["response_hash"]
    assert any(r["response_hash"] < 0 for r in rows.values())
    # Every paragraph's length (what the cold-start readability reads), split here independently.
    assert mixed["paragraph_chars"] == [len(p.strip()) for p in re.split(r"\n\s*\n", reasoning) if p.strip()]


def test_decisions_and_whatif_read_signals_only(runtime_factory, monkeypatch, capsys) -> None:
    rt = runtime_factory(annotate__long_paragraph__max_chars=2000)
    params = rt.config.annotate
    rows = [row for row, _ in CASES if row[0] != "big"]
    frame = rt.spark.createDataFrame(rows, COLUMNS).withColumn("prompt_id", F.col("candidate_id"))
    decided = frame.transform(annotate_candidates, params).transform(decide_annotate, params)
    # Stored without any text column: what is not there cannot be read.
    assert not TEXT_COLUMNS & set(decision_columns())
    rt.tables.write(decided.select(*decision_columns()), "silver.candidates")

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a decision must not run a model")

    monkeypatch.setattr(language, "load_model", no_model)
    monkeypatch.setattr(language, "identify", no_model)
    stored = rt.tables.read("silver.candidates")
    first = {
        r.candidate_id: r.reject_reasons for r in stored.select("candidate_id", "reject_reasons").collect()
    }
    again = (
        stored.transform(decide_annotate, params).select("candidate_id", "reject_reasons", "spans").collect()
    )
    assert first == {r.candidate_id: r.reject_reasons for r in again}  # idempotent: replaces, never appends
    looser = dataclasses.replace(
        params, long_paragraph=dataclasses.replace(params.long_paragraph, max_chars=100_000)
    )
    relaxed = (
        stored.transform(decide_annotate, looser).select("candidate_id", "reject_reasons", "spans").collect()
    )
    assert "long_paragraph" in first["long_para"]
    assert "long_paragraph" not in {r.candidate_id: r.reject_reasons for r in relaxed}["long_para"]
    assert not [s for r in relaxed for s in r.spans if s.reason == "long_paragraph"]
    assert set(ANNOTATE_REASONS) >= {r for v in first.values() for r in v}

    changes = {
        "annotate.long_paragraph.max_chars": 100_000,
        "annotate.repetition.max_repeated_chars": 10**6,
        "annotate.repetition.max_duplicate_share": 1.0,
    }
    strata = {(r["kind"], r["domain"]): r for r in run_whatif(rt, changes)}
    math = strata[("reasoning", "math")]
    assert (math["restored"], math["newly_dropped"]) == (2, 0)  # long_para and loop come back
    assert math["kept_after"] == math["kept_now"] + 2 and math["prompts_after"] == math["kept_after"]
    stricter = run_whatif(rt, {"annotate.lengths.min_reasoning_tokens": 10**6})
    assert sum(r["newly_dropped"] for r in stricter) == sum(
        r["kept_now"] for r in stricter if r["kind"] == "reasoning"
    )
    print_whatif(list(strata.values()), changes)
    assert "newly_dropped" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        whatif_config(rt.config, {"mix.total": 5})
    with pytest.raises(Exception, match="unknown key"):
        whatif_config(rt.config, {"annotate.language.mixed_sharee": 0.1})
