//! Demo 政务公开: what the civil-affairs, human-resources and finance bureaus of the staffed
//! districts published over the last months (policies with their interpretations, notices,
//! plans, budgets, one revised, one repealed), their disclosure guides, and requests for
//! information from the demo resident and enterprise in every state.

use chrono::Duration;

use super::*;
use ::openness::{
    Answer, AnswerType, Delivery, DocumentDraft, DocumentFilter, DocumentKind, DocumentText, HandlingAction,
    NewInformationRequest, Openness, Theme,
};
use kernel::authz::{DisclosureAnswer, DisclosurePublish};

/// (kind, theme, title after the district's name, 文号 pattern or none, text)
type Template = (DocumentKind, Theme, &'static str, Option<&'static str>, &'static str);

const MZ: &[Template] = &[
    (
        DocumentKind::Policy,
        Theme::CivilAffairs,
        "城乡居民最低生活保障实施办法",
        Some("民发〔2026〕{n}号"),
        "第一条 为保障城乡困难群众基本生活，根据《社会救助暂行办法》，结合本区实际，制定本办法。\n\
         第二条 共同生活的家庭成员人均收入低于当地最低生活保障标准，且符合财产状况规定的，可以申请最低生活保障。\n\
         第三条 申请人可以通过通办平台在线申请，也可以到户籍所在地街道便民服务中心提出申请。\n\
         第四条 街道办事处应当自受理申请之日起 15 个工作日内完成审核，区民政局自收到审核意见之日起 10 个工作日内作出决定。",
    ),
    (
        DocumentKind::Notice,
        Theme::CivilAffairs,
        "关于开展养老服务补贴资格认证的通知",
        Some("民通〔2026〕{n}号"),
        "各街道办事处：\n为做好高龄津贴和养老服务补贴发放工作，现就资格认证有关事项通知如下。\n\
         一、认证对象为本区享受高龄津贴和养老服务补贴的老年人。\n\
         二、老年人可以通过通办平台“长辈模式”刷脸认证，行动不便的由社区工作人员上门认证。\n\
         三、认证时间为每年 11 月 1 日至 12 月 31 日。",
    ),
    (
        DocumentKind::Plan,
        Theme::CivilAffairs,
        "“十五五”养老服务体系建设规划",
        None,
        "一、发展基础\n“十四五”期间，全区建成社区养老服务中心 42 个，养老床位达到每千名老年人 38 张。\n\
         二、主要目标\n到 2030 年，街道综合养老服务中心实现全覆盖，护理型床位占比不低于 60%。\n\
         三、重点任务\n完善居家社区机构相协调、医养康养相结合的养老服务体系。",
    ),
    (
        DocumentKind::Notice,
        Theme::CivilAffairs,
        "关于 2026 年冬春困难群众救助工作的公告",
        None,
        "为确保困难群众温暖过冬，本区将于 2026 年 12 月至 2027 年 3 月开展冬春救助。\n\
         对低保对象、特困人员发放一次性生活补助，对因灾因病临时困难家庭及时给予临时救助。\n\
         救助热线：12345。",
    ),
];

const RS: &[Template] = &[
    (
        DocumentKind::Policy,
        Theme::Labour,
        "促进高校毕业生就业创业若干措施",
        Some("人社发〔2026〕{n}号"),
        "一、对吸纳离校两年内未就业高校毕业生并签订一年以上劳动合同的小微企业，给予每人 1500 元一次性吸纳就业补贴。\n\
         二、高校毕业生首次创业的，可申请最高 30 万元创业担保贷款，按规定给予贴息。\n\
         三、补贴申请通过通办平台办理，材料可以使用电子证照，不再提交纸质复印件。",
    ),
    (
        DocumentKind::Notice,
        Theme::Labour,
        "关于调整城乡居民基本养老保险基础养老金的通知",
        Some("人社通〔2026〕{n}号"),
        "自 2026 年 1 月 1 日起，本区城乡居民基本养老保险基础养老金每人每月提高 20 元。\n\
         调整所需资金由各级财政按规定分担，于 2026 年 3 月底前补发到位。",
    ),
    (
        DocumentKind::Personnel,
        Theme::Labour,
        "2026 年公开招聘事业单位工作人员拟聘用人员公示",
        None,
        "根据事业单位公开招聘有关规定，经笔试、面试、体检和考察，现将拟聘用人员名单予以公示。\n\
         公示期为 5 个工作日。对公示人员有异议的，可以书面形式向区人力资源和社会保障局反映。",
    ),
];

const CZ: &[Template] = &[
    (
        DocumentKind::Budget,
        Theme::Finance,
        "2026 年区级部门预算",
        None,
        "一、收入预算\n2026 年区级一般公共预算收入 18.6 亿元，比上年增长 4.2%。\n\
         二、支出预算\n一般公共预算支出 32.4 亿元，其中民生支出占比 78.5%。\n\
         三、“三公”经费预算\n“三公”经费预算 612 万元，比上年下降 3.1%。",
    ),
    (
        DocumentKind::FinalAccount,
        Theme::Finance,
        "2025 年区级决算",
        None,
        "2025 年区级一般公共预算收入完成 17.9 亿元，为预算的 101.3%。\n\
         一般公共预算支出完成 31.2 亿元，为调整预算的 97.6%。\n\
         “三公”经费实际支出 598 万元，比预算减少 32 万元。",
    ),
    (
        DocumentKind::Regulation,
        Theme::Finance,
        "政府采购内部控制管理办法",
        Some("财发〔2026〕{n}号"),
        "第一条 为加强政府采购活动内部控制管理，规范采购行为，制定本办法。\n\
         第二条 采购需求、采购方式、评审和验收应当分事分岗、相互制约。\n\
         第三条 采购合同应当自签订之日起 2 个工作日内公告。",
    ),
];

/// Seeds the demo's disclosures once, on a platform with none, published by the districts'
/// officers over the last months. Returns how many documents and requests.
pub async fn seed_disclosure(
    identity: &Identity,
    openness: &Openness,
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, usize)> {
    if openness.documents().search(&DocumentFilter::default(), 1, 1).await?.total > 0 {
        return Ok((0, 0));
    }
    let mut documents = 0;
    let mut first_policy = None;
    for (district, district_name, pinyin) in staffed_districts() {
        let short: String = district_name.chars().take(1).collect();
        for dept in DISCLOSING_DEPARTMENTS {
            let templates = match *dept {
                "MZ" => MZ,
                "RS" => RS,
                _ => CZ,
            };
            let username = format!("open.{}.{pinyin}", dept.to_lowercase());
            // A platform seeded before the officers existed has none: it keeps its state.
            let Ok(officer) = identity.sign_in().console_principal(&username).await else {
                return Ok((0, 0));
            };
            let cap = officer.authorize::<DisclosurePublish>()?;
            let department = format!("{district}-{dept}");
            let guide = format!(
                "一、主动公开\n本机关主动公开的政府信息通过{district_name}人民政府门户网站“政务公开”栏目发布，并设索引号。\n\
                 二、依申请公开\n公民、法人或者其他组织可以通过通办平台在线提出申请，写明所需信息的名称、文号或者便于查询的其他特征性描述。\n\
                 本机关自收到申请之日起 20 个工作日内答复；需要延长的，经负责人同意后告知申请人，延长期限最长不超过 20 个工作日。\n\
                 三、监督方式\n申请人认为本机关侵犯其合法权益的，可以依法申请行政复议或者提起行政诉讼。"
            );
            openness.publishing().set_guide(&cap, &department, &guide, now).await?;
            for (i, (kind, theme, title, number, body)) in templates.iter().enumerate() {
                // Spread over the last half year, the oldest first.
                let days_ago = i64::try_from(180 - 40 * i).unwrap_or(0) + if district.ends_with('3') { 5 } else { 0 };
                let at = now - Duration::days(days_ago);
                let written_on = (at - Duration::days(3)).with_timezone(&services::calendar::cst()).date_naive();
                let n = documents + 1;
                let text = DocumentText {
                    theme: *theme,
                    title: format!("{district_name}{title}"),
                    document_number: number.map(|p| format!("{short}{}", p.replace("{n}", &n.to_string()))),
                    written_on,
                    body: (*body).to_string(),
                };
                let draft = DocumentDraft { department: department.clone(), kind: *kind, interprets: None, text };
                let doc = openness.publishing().publish(&cap, draft, at).await?;
                documents += 1;
                if *kind == DocumentKind::Policy {
                    let explained = DocumentText {
                        theme: *theme,
                        title: format!("一图读懂《{district_name}{title}》"),
                        document_number: None,
                        written_on,
                        body: format!(
                            "《{district_name}{title}》已经发布。\n一、出台背景：回应群众关切，落实上级部署。\n\
                             二、主要内容：明确对象、条件、标准和办理流程。\n三、怎么办：通过通办平台在线办理，材料能免则免。"
                        ),
                    };
                    let draft = DocumentDraft {
                        department: department.clone(),
                        kind: DocumentKind::Interpretation,
                        interprets: Some(doc.summary.id.clone()),
                        text: explained,
                    };
                    openness.publishing().publish(&cap, draft, at + Duration::days(1)).await?;
                    documents += 1;
                    first_policy.get_or_insert((doc.summary.id.clone(), cap_of(&officer)?));
                }
                if *kind == DocumentKind::Personnel {
                    let reason = "公示期满，无异议";
                    openness.publishing().repeal(&cap, &doc.summary.id, 1, reason, at + Duration::days(8)).await?;
                }
            }
        }
    }
    // One policy revised, its first text kept in the history.
    if let Some((id, cap)) = first_policy {
        let doc = openness.documents().document(&id).await?;
        let mut text = DocumentText {
            theme: doc.summary.theme,
            title: doc.summary.title.clone(),
            document_number: doc.summary.document_number.clone(),
            written_on: doc.summary.written_on,
            body: doc.body.clone(),
        };
        text.body.push_str("\n第五条 本办法自发布之日起施行，有效期 5 年。");
        openness
            .publishing()
            .revise(&cap, &id, doc.summary.version, text, "补充施行日期和有效期", now - Duration::days(20))
            .await?;
    }
    let requests = seed_requests_for_information(identity, openness, now).await?;
    seed_public_ledgers(identity, openness, now).await?;
    Ok((documents, requests))
}

fn cap_of(p: &identity::Principal) -> anyhow::Result<identity::Capability<DisclosurePublish>> {
    Ok(p.authorize::<DisclosurePublish>()?)
}

/// Requests from the demo resident and enterprise: answered, waiting for a clarification,
/// extended, due soon and overdue.
async fn seed_requests_for_information(
    identity: &Identity,
    openness: &Openness,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let citizen = identity.sign_in().console_principal("citizen.demo").await?;
    let enterprise = identity.sign_in().console_principal("enterprise.demo").await?;
    let mingyue = staffed_districts().next().ok_or_else(|| anyhow::anyhow!("no staffed district"))?;
    let (district, _, pinyin) = mingyue;
    let officer = |dept: &str| format!("open.{}.{pinyin}", dept.to_lowercase());
    let answerer = |p: identity::Principal| p.authorize::<DisclosureAnswer>();
    let ask = |dept: &str, description: &str, delivery| NewInformationRequest {
        department: format!("{district}-{dept}"),
        description: description.into(),
        purpose: Some("了解政策落实情况".into()),
        delivery,
        idempotency_key: None,
    };
    let mz = answerer(identity.sign_in().console_principal(&officer("MZ")).await?)?;
    let cz = answerer(identity.sign_in().console_principal(&officer("CZ")).await?)?;
    let rs = answerer(identity.sign_in().console_principal(&officer("RS")).await?)?;
    let requests = openness.requests();
    let handling = openness.handling();

    let asked = now - Duration::days(30);
    let r = requests
        .submit(&citizen, ask("MZ", "请公开本区 2025 年城乡低保资金发放总额及保障户数", Delivery::Online), asked)
        .await?;
    let answer = Answer {
        answer_type: AnswerType::Disclosed,
        text: "经查，2025 年本区共发放城乡低保资金 3280 万元，保障 6120 户 9870 人。".into(),
        legal_ground: None,
        referral: None,
    };
    handling.act(&mz, &r.id, HandlingAction::Answer(answer), asked + Duration::days(9)).await?;

    let r = requests
        .submit(&enterprise, ask("CZ", "请公开政府采购项目的相关信息", Delivery::Email), now - Duration::days(4))
        .await?;
    let clarify = "请写明所需采购项目的名称、年度或项目编号，以便检索。".to_string();
    handling.act(&cz, &r.id, HandlingAction::AskClarification { text: clarify }, now - Duration::days(3)).await?;

    let r = requests
        .submit(
            &citizen,
            ask("RS", "请公开 2026 年一次性吸纳就业补贴的发放企业名单和金额", Delivery::Online),
            now - Duration::days(22),
        )
        .await?;
    let extend =
        HandlingAction::Extend { working_days: 10, reason: "需要向各街道和经办机构汇总数据".into() };
    handling.act(&rs, &r.id, extend, now - Duration::days(8)).await?;

    requests
        .submit(
            &enterprise,
            ask("RS", "请公开本区人力资源服务许可的办理条件和审批结果", Delivery::Online),
            now - Duration::days(35),
        )
        .await?;
    requests
        .submit(
            &citizen,
            ask("MZ", "请公开本区社区养老服务中心的名单和收费标准", Delivery::Post),
            now - Duration::days(2),
        )
        .await?;
    let r = requests
        .submit(&citizen, ask("CZ", "请公开区级部门“三公”经费的明细", Delivery::Online), now - Duration::days(15))
        .await?;
    let answer = Answer {
        answer_type: AnswerType::PartlyDisclosed,
        text: "“三公”经费总额及分项已在部门预算中公开；具体人员信息涉及个人隐私，不予公开。".into(),
        legal_ground: Some(::openness::LegalGround::ThirdPartyRights),
        referral: None,
    };
    handling.act(&cz, &r.id, HandlingAction::Answer(answer), now - Duration::days(6)).await?;
    Ok(6)
}

/// Each staffed district's community worker publishes the last three months of their
/// community's finances (the first month corrected once); its trading officer publishes a
/// renovation project from tender notice to contract.
async fn seed_public_ledgers(identity: &Identity, openness: &Openness, now: DateTime<Utc>) -> anyhow::Result<()> {
    use ::openness::{Direction, FinanceLine, MonthlyStatement, Party, Stage, TransactionRecord};
    let line = |direction, category: &str, amount_fen| FinanceLine {
        amount_fen,
        category: category.into(),
        direction,
        note: None,
    };
    let ledgers = openness.ledgers();
    for (n, (district, district_name, pinyin)) in staffed_districts().enumerate() {
        let worker = identity.sign_in().console_principal(&format!("grid.{pinyin}")).await?;
        let community =
            worker.region.clone().ok_or_else(|| anyhow::anyhow!("the demo's community worker has no community"))?;
        let cap = worker.authorize::<kernel::authz::CommunityFinancePublish>()?;
        let scale = i64::try_from(n).unwrap_or(0) + 1;
        for months_ago in (1..=3).rev() {
            let at = now - Duration::days(30 * months_ago - 5);
            let month = (now - Duration::days(30 * months_ago))
                .with_timezone(&services::calendar::cst())
                .format("%Y-%m")
                .to_string();
            let statement = MonthlyStatement {
                community: community.code.clone(),
                lines: vec![
                    line(Direction::Income, "上级补助", 12_000_000 * scale),
                    line(Direction::Income, "服务收入", 860_000 + 10_000 * months_ago),
                    line(Direction::Spending, "办公费", 356_050),
                    line(Direction::Spending, "环境整治", 1_200_000 + 50_000 * months_ago),
                    line(Direction::Spending, "困难群众慰问", 600_000),
                ],
                month,
                note: None,
            };
            let published = ledgers.publish_statement(&cap, &statement, None, at).await?;
            if months_ago == 3 {
                let mut fixed = statement.clone();
                fixed.note = Some("更正：办公费金额录入有误".into());
                if let Some(l) = fixed.lines.get_mut(2) {
                    l.amount_fen = 365_050;
                }
                ledgers.publish_statement(&cap, &fixed, Some(&published.id), at + Duration::days(2)).await?;
            }
        }
        let officer = identity.sign_in().console_principal(&format!("trade.{pinyin}")).await?;
        let cap = officer.authorize::<kernel::authz::TransactionPublish>()?;
        let code = format!("{district}-GC-2026-{:03}", n + 1);
        let name = format!("{district_name}老旧小区改造工程（一期）");
        let record = |stage, amount_fen, parties: Vec<Party>, details: &str| TransactionRecord {
            amount_fen,
            details: details.into(),
            parties,
            project_code: code.clone(),
            project_name: name.clone(),
            stage,
        };
        let party = |name: &str, amount_fen| Party { amount_fen, name: name.into() };
        let stages = [
            record(
                Stage::TenderNotice,
                Some(480_000_000),
                vec![],
                "公开招标，最高投标限价 480 万元，工期 180 日历天；投标截止时间为公告发布后第 20 日。",
            ),
            record(
                Stage::BidOpening,
                None,
                vec![
                    party("云岭建工集团有限公司", Some(462_000_000)),
                    party("春城市政工程有限公司", Some(455_500_000)),
                    party("明湖建设有限公司", Some(470_800_000)),
                ],
                "开标现场由公证人员监督，三家投标人报价如下。",
            ),
            record(
                Stage::Award,
                Some(455_500_000),
                vec![party("春城市政工程有限公司", Some(455_500_000))],
                "经评标委员会评审，推荐春城市政工程有限公司为中标人，公示期 3 日。",
            ),
            record(
                Stage::Contract,
                Some(455_500_000),
                vec![
                    party(&format!("{district_name}住房和城乡建设局"), None),
                    party("春城市政工程有限公司", Some(455_500_000)),
                ],
                "双方签订施工合同，合同工期 180 日历天，质量标准为合格。",
            ),
        ];
        for (i, r) in stages.iter().enumerate() {
            let at = now - Duration::days(60 - 12 * i64::try_from(i).unwrap_or(0));
            ledgers.publish_transaction(&cap, r, None, at).await?;
        }
    }
    Ok(())
}
