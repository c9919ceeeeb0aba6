"""A deterministic generator of large, realistic catalog files for the catalog benchmark.

Usable as a module (``generate_catalog(...)`` returns the catalog as plain data, ``write_catalog(...)``
writes it as YAML) and as a script::

    uv run python bench/generate_catalog.py OUT.yaml --items 10000 --fields-per-item 20 --departments 100

The same arguments and seed always give the same file, byte for byte. The output follows the catalog
file format (``catalog.declarations.schemas.CatalogFile``) and respects the seeded classification scheme:
personal fields (resident_id, phone, person_name, email, bank_card) are at level 3 or above, address and
vehicle_plate at level 2 or above; open-data items are never ``not_shared``; every item has a key field.
Defaults (data_type string, nullable true, ...) are left out, as a person writing the file would.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MINIMUM_LEVELS = {
    "resident_id": 3,
    "phone": 3,
    "person_name": 3,
    "email": 3,
    "bank_card": 3,
    "address": 2,
    "vehicle_plate": 2,
}
MAX_LEVEL = 4

STREETS = ["坪山街道", "马峦街道", "碧岭街道", "石井街道", "坑梓街道", "龙田街道"]
COMMUNITIES = [
    "坪环社区", "金龟社区", "六和社区", "沙湖社区", "汤坑社区", "马峦社区", "碧岭社区", "江岭社区",
    "和平社区", "六联社区", "坑梓社区", "秀新社区", "南布社区", "田心社区", "竹坑社区", "石井社区",
]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Field templates


@dataclass(frozen=True)
class FieldTemplate:
    name: str
    label: str
    data_type: str = "string"
    semantic_type: str = "none"
    level: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def F(name: str, label: str, dt: str = "string", sem: str = "none", lvl: int = 1, **extra: Any) -> FieldTemplate:
    return FieldTemplate(name, label, dt, sem, lvl, extra)


def codes(*values: str) -> dict[str, Any]:
    return {"allowed_values": list(values)}


# Fields about a person: added to items whose subject concerns residents.
PERSON_FIELDS = [
    F("姓名", "Name", sem="person_name", lvl=3),
    F("公民身份号码", "Resident ID number", sem="resident_id", lvl=3, pattern=r"^[0-9]{17}[0-9X]$"),
    F("性别", "Sex", sem="code_list", lvl=2, **codes("男", "女")),
    F("出生日期", "Date of birth", dt="date", lvl=3, minimum="1900-01-01"),
    F("联系电话", "Phone", sem="phone", lvl=3),
    F("手机号码", "Mobile phone", sem="phone", lvl=3, pattern=r"^1[3-9][0-9]{9}$"),
    F("户籍地址", "Registered address", sem="address", lvl=3),
    F("居住地址", "Residential address", sem="address", lvl=2),
    F("电子邮箱", "Email", sem="email", lvl=3),
    F("银行卡号", "Bank card number", sem="bank_card", lvl=3),
    F(
        "民族",
        "Ethnic group",
        sem="code_list",
        lvl=2,
        **codes("汉族", "壮族", "回族", "满族", "苗族", "其他"),
    ),
    F(
        "证件类型",
        "ID document type",
        sem="code_list",
        lvl=1,
        **codes("居民身份证", "护照", "港澳居民来往内地通行证"),
    ),
    F("工作单位", "Employer", sem="organization_name", lvl=2),
    F("国籍", "Nationality", sem="code_list", lvl=1, **codes("中国", "其他")),
    F("紧急联系人", "Emergency contact", sem="person_name", lvl=3),
    F("紧急联系人电话", "Emergency contact phone", sem="phone", lvl=3),
    F("经办人", "Handled by", sem="person_name", lvl=3),
    F("经办人电话", "Handler phone", sem="phone", lvl=3),
]

# Fields about an organisation.
ORGANIZATION_FIELDS = [
    F("统一社会信用代码", "Unified social credit code", sem="uscc", lvl=1, pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$"),
    F("单位名称", "Organisation name", sem="organization_name", lvl=1),
    F("法定代表人", "Legal representative", sem="person_name", lvl=3),
    F("法定代表人证件号码", "Legal representative ID", sem="resident_id", lvl=3),
    F("单位地址", "Organisation address", sem="address", lvl=2),
    F("单位联系电话", "Organisation phone", sem="phone", lvl=3),
    F("联系人", "Contact person", sem="person_name", lvl=3),
    F("行业类别", "Industry", sem="code_list", lvl=1, **codes("制造业", "批发和零售业", "建筑业", "信息技术服务", "住宿和餐饮业", "其他")),
]  # fmt: skip

# Fields any item may carry.
COMMON_FIELDS = [
    F("数据更新时间", "Updated at", dt="datetime", lvl=1),
    F("创建时间", "Created at", dt="datetime", lvl=1),
    F("数据来源", "Data source", sem="code_list", lvl=1, **codes("业务系统", "人工录入", "部门报送", "物联感知")),
    F("所属街道", "Street", sem="code_list", lvl=1, **codes(*STREETS)),
    F("所属社区", "Community", sem="code_list", lvl=2, **codes(*COMMUNITIES)),
    F("备注", "Remarks", sem="free_text", lvl=2),
    F("数据状态", "Record status", sem="code_list", lvl=1, **codes("有效", "无效", "已注销")),
    F("业务类别", "Business category", sem="code_list", lvl=1, **codes("登记", "变更", "注销", "年检", "其他")),
    F("数据版本", "Data version", dt="integer", lvl=1, minimum="1"),
    F("审核日期", "Reviewed on", dt="date", lvl=1, minimum="2000-01-01"),
    F("统计年度", "Statistical year", dt="integer", lvl=1, minimum="2000", maximum="2035"),
    F("登记机关", "Registration authority", sem="organization_name", lvl=1),
    F("有效标志", "Valid flag", dt="boolean", lvl=1),
    F("经度", "Longitude", dt="decimal", lvl=2, minimum="113.0", maximum="115.0"),
    F("纬度", "Latitude", dt="decimal", lvl=2, minimum="22.0", maximum="23.0"),
    F("网格编码", "Grid code", sem="identifier", lvl=1, pattern=r"^4403[0-9]{8}$"),
    F("业务办理日期", "Processed on", dt="date", lvl=1),
    F("办理结果", "Outcome", sem="code_list", lvl=1, **codes("通过", "不通过", "办理中")),
    F("附件数量", "Attachments", dt="integer", lvl=1, minimum="0"),
    F("区划代码", "Division code", sem="code_list", lvl=1, **codes("440310", "440310001", "440310002", "440310003")),
]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Domains: subjects, tags, source systems and their own fields


@dataclass(frozen=True)
class Domain:
    code: str  # goes into item codes
    name: str
    tags: tuple[str, ...]
    systems: tuple[tuple[str, str], ...]  # (code, name)
    subjects: tuple[str, ...]
    fields: tuple[FieldTemplate, ...]
    person: float  # share of items about persons
    organization: float  # share of items about organisations


DOMAINS: dict[str, Domain] = {
    d.code: d
    for d in [
        Domain("RK", "人口", ("人口", "户籍", "基础库", "人口库"),
               (("population", "人口信息管理系统"), ("residence", "居住证管理系统")),
               ("户籍人口", "常住人口", "流动人口", "出生登记", "死亡登记", "人口迁移", "暂住登记",
                "老年人口", "残疾人口", "人口户籍变动"),
               (F("户号", "Household number", sem="identifier", lvl=2),
                F("与户主关系", "Relation to head", sem="code_list", lvl=2, **codes("本人", "配偶", "子女", "父母", "其他")),
                F("婚姻状况", "Marital status", sem="code_list", lvl=3, **codes("未婚", "已婚", "离婚", "丧偶")),
                F("文化程度", "Education", sem="code_list", lvl=2, **codes("小学", "初中", "高中", "大专", "本科", "研究生")),
                F("迁入日期", "Moved in on", dt="date", lvl=2),
                F("迁出日期", "Moved out on", dt="date", lvl=2),
                F("人口类别", "Population category", sem="code_list", lvl=1, **codes("户籍", "常住", "流动")),
                F("居住事由", "Reason of residence", sem="code_list", lvl=2, **codes("务工", "经商", "就学", "投靠亲友")),
                F("居住证编号", "Residence permit number", sem="identifier", lvl=2),
                F("登记日期", "Registered on", dt="date", lvl=1)),
               0.95, 0.05),
        Domain("FR", "法人", ("法人", "企业", "基础库", "法人库", "营商环境"),
               (("enterprise", "商事主体登记系统"), ("license", "行政许可审批系统")),
               ("企业登记", "个体工商户", "社会组织", "事业单位法人", "企业年报", "经营异常名录",
                "行政许可", "行政处罚", "企业法人变更", "外商投资企业"),
               (F("企业名称", "Enterprise name", sem="organization_name", lvl=1),
                F("注册资本万元", "Registered capital (10k CNY)", dt="decimal", lvl=1, minimum="0"),
                F("成立日期", "Date established", dt="date", lvl=1),
                F("经营范围", "Business scope", sem="free_text", lvl=1),
                F("企业类型", "Enterprise type", sem="code_list", lvl=1, **codes("有限责任公司", "股份有限公司", "个人独资企业", "合伙企业")),
                F("经营状态", "Business status", sem="code_list", lvl=1, **codes("存续", "在业", "吊销", "注销")),
                F("注册地址", "Registered address", sem="address", lvl=2),
                F("核准日期", "Approved on", dt="date", lvl=1),
                F("许可证编号", "Licence number", sem="identifier", lvl=1),
                F("处罚决定书文号", "Penalty decision number", sem="identifier", lvl=1)),
               0.15, 0.9),
        Domain("FW", "房屋", ("房屋", "不动产", "基础库", "住房"),
               (("housing", "房屋综合管理系统"), ("estate", "不动产登记系统")),
               ("房屋基本信息", "不动产登记", "房屋租赁备案", "城中村房屋", "保障性住房", "商品房预售",
                "物业小区", "楼栋", "出租屋"),
               (F("房屋编码", "Building unit code", sem="identifier", lvl=1, pattern=r"^[0-9]{19}$"),
                F("楼栋编码", "Building code", sem="identifier", lvl=1),
                F("房屋地址", "Address", sem="address", lvl=2),
                F("建筑面积", "Floor area (m2)", dt="decimal", lvl=1, minimum="0"),
                F("房屋用途", "Use", sem="code_list", lvl=1, **codes("住宅", "商业", "办公", "工业", "其他")),
                F("产权人姓名", "Owner name", sem="person_name", lvl=3),
                F("产权证号", "Title deed number", sem="identifier", lvl=2),
                F("建成年份", "Year built", dt="integer", lvl=1, minimum="1950", maximum="2035"),
                F("所在楼层", "Floor", dt="integer", lvl=1, minimum="-5", maximum="120"),
                F("结构类型", "Structure", sem="code_list", lvl=1, **codes("钢混", "砖混", "钢结构", "其他")),
                F("租赁起始日期", "Lease start", dt="date", lvl=2),
                F("月租金元", "Monthly rent (CNY)", dt="decimal", lvl=2, minimum="0")),
               0.5, 0.2),
        Domain("SB", "社保", ("社保", "社会保障", "民生", "人社"),
               (("insurance", "社会保险业务系统"), ("benefit", "社保待遇发放系统")),
               ("养老保险参保", "医疗保险参保", "失业保险", "工伤保险", "社保缴费", "社保待遇发放",
                "灵活就业参保", "社保卡"),
               (F("社会保障卡号", "Social security card", sem="identifier", lvl=3),
                F("参保状态", "Insured status", sem="code_list", lvl=2, **codes("正常参保", "暂停缴费", "终止参保")),
                F("缴费基数", "Contribution base", dt="decimal", lvl=3, minimum="0"),
                F("缴费月份", "Contribution month", sem="identifier", lvl=2, pattern=r"^[0-9]{6}$"),
                F("参保日期", "Insured since", dt="date", lvl=2),
                F("险种类型", "Insurance type", sem="code_list", lvl=1, **codes("养老", "医疗", "失业", "工伤", "生育")),
                F("参保单位编号", "Employer number", sem="identifier", lvl=2),
                F("待遇金额元", "Benefit amount (CNY)", dt="decimal", lvl=3, minimum="0"),
                F("开户银行", "Bank", sem="organization_name", lvl=2),
                F("累计缴费月数", "Months contributed", dt="integer", lvl=2, minimum="0")),
               0.9, 0.3),
        Domain("YL", "医疗", ("医疗", "卫生健康", "民生", "健康"),
               (("his", "区域卫生信息平台"), ("vaccine", "免疫规划信息系统")),
               ("医疗机构", "执业医师", "门诊就诊", "住院病案", "疫苗接种", "出生医学证明", "家庭医生签约",
                "居民健康档案", "医疗废物"),
               (F("医疗机构名称", "Facility name", sem="organization_name", lvl=1),
                F("医疗机构代码", "Facility code", sem="identifier", lvl=1),
                F("科室", "Department", sem="code_list", lvl=1, **codes("内科", "外科", "儿科", "妇产科", "全科", "急诊")),
                F("诊断编码", "Diagnosis code", sem="identifier", lvl=4),
                F("就诊日期", "Visit date", dt="date", lvl=3),
                F("医师姓名", "Doctor", sem="person_name", lvl=3),
                F("费用总额", "Total cost (CNY)", dt="decimal", lvl=3, minimum="0"),
                F("医保类型", "Insurance scheme", sem="code_list", lvl=2, **codes("职工医保", "居民医保", "自费")),
                F("疫苗名称", "Vaccine", sem="code_list", lvl=2, **codes("乙肝疫苗", "卡介苗", "脊灰疫苗", "麻腮风疫苗", "流感疫苗")),
                F("接种剂次", "Dose", dt="integer", lvl=2, minimum="1", maximum="5"),
                F("签约医生", "Contracted doctor", sem="person_name", lvl=3),
                F("床位数", "Beds", dt="integer", lvl=1, minimum="0")),
               0.8, 0.3),
        Domain("JY", "教育", ("教育", "学校", "民生"),
               (("school", "教育管理信息系统"), ("enrol", "学位申请系统")),
               ("学校基本信息", "在校学生", "学位申请", "教师资格", "校外培训机构", "幼儿园", "学籍",
                "毕业生", "教育经费"),
               (F("学校名称", "School", sem="organization_name", lvl=1),
                F("学校标识码", "School code", sem="identifier", lvl=1, pattern=r"^[0-9]{10}$"),
                F("学段", "School stage", sem="code_list", lvl=1, **codes("幼儿园", "小学", "初中", "高中")),
                F("年级", "Grade", sem="code_list", lvl=2, **codes("一年级", "二年级", "三年级", "四年级", "五年级", "六年级")),
                F("班级", "Class", lvl=2),
                F("学籍号", "Student number", sem="identifier", lvl=3),
                F("入学日期", "Enrolled on", dt="date", lvl=2),
                F("监护人姓名", "Guardian", sem="person_name", lvl=3),
                F("监护人电话", "Guardian phone", sem="phone", lvl=3),
                F("学位类型", "Place type", sem="code_list", lvl=2, **codes("户籍", "非户籍", "积分")),
                F("在校生人数", "Students", dt="integer", lvl=1, minimum="0"),
                F("教师资格证号", "Teacher certificate", sem="identifier", lvl=2)),
               0.75, 0.3),
        Domain("JT", "交通", ("交通", "车辆", "出行"),
               (("vehicle", "机动车管理系统"), ("traffic", "交通违法处理系统")),
               ("机动车登记", "驾驶人", "交通违法", "公交线路", "公共停车场", "道路运输企业", "网约车",
                "交通事故", "共享单车"),
               (F("车牌号码", "Plate number", sem="vehicle_plate", lvl=2),
                F("号牌种类", "Plate type", sem="code_list", lvl=1, **codes("小型汽车", "大型汽车", "新能源小型车", "摩托车")),
                F("车辆类型", "Vehicle type", sem="code_list", lvl=1, **codes("轿车", "客车", "货车", "专项作业车")),
                F("车辆识别代号", "VIN", sem="identifier", lvl=2, pattern=r"^[A-HJ-NPR-Z0-9]{17}$"),
                F("违法时间", "Offence time", dt="datetime", lvl=2),
                F("违法地点", "Offence location", sem="address", lvl=2),
                F("违法行为代码", "Offence code", sem="identifier", lvl=1),
                F("罚款金额", "Fine (CNY)", dt="decimal", lvl=2, minimum="0"),
                F("记分", "Penalty points", dt="integer", lvl=2, minimum="0", maximum="12"),
                F("线路编号", "Route number", sem="identifier", lvl=1),
                F("泊位数", "Parking spaces", dt="integer", lvl=1, minimum="0"),
                F("驾驶证号", "Driving licence", sem="resident_id", lvl=3)),
               0.6, 0.3),
        Domain("HJ", "环境", ("环境", "生态", "监测"),
               (("monitor", "生态环境监测平台"), ("permit", "排污许可管理系统")),
               ("排污许可", "环境监测", "空气质量", "水质监测", "噪声监测", "环境信访", "危险废物",
                "环评审批", "重点排污单位"),
               (F("监测点位", "Monitoring site", sem="code_list", lvl=1, **codes("坪山站", "坑梓站", "碧岭站", "石井站")),
                F("监测时间", "Measured at", dt="datetime", lvl=1),
                F("PM2.5浓度", "PM2.5 (ug/m3)", dt="decimal", lvl=1, minimum="0"),
                F("化学需氧量", "COD (mg/L)", dt="decimal", lvl=1, minimum="0"),
                F("pH值", "pH", dt="decimal", lvl=1, minimum="0", maximum="14"),
                F("排放口编号", "Outfall number", sem="identifier", lvl=1),
                F("超标标志", "Exceeded", dt="boolean", lvl=1),
                F("监测项目", "Parameter", sem="code_list", lvl=1, **codes("二氧化硫", "氮氧化物", "颗粒物", "氨氮", "总磷")),
                F("排污许可证编号", "Discharge permit", sem="identifier", lvl=1),
                F("等效声级", "Noise level (dB)", dt="decimal", lvl=1, minimum="0", maximum="150")),
               0.1, 0.6),
        Domain("SQ", "诉求", ("诉求", "民生诉求", "12345", "基层治理"),
               (("complaints", "民生诉求综合服务系统"), ("petition", "信访信息系统")),
               ("民生诉求事件", "12345热线工单", "信访件", "网格事件", "投诉举报", "矛盾纠纷", "诉求办理"),
               (F("事件编号", "Case number", sem="identifier", lvl=1, pattern=r"^PS[0-9]{14}$"),
                F("事件类型", "Case type", sem="code_list", lvl=1, **codes("噪音扰民", "路灯故障", "占道经营", "井盖破损", "违规停车", "垃圾暴露", "漏水")),
                F("来源渠道", "Channel", sem="code_list", lvl=1, **codes("12345热线", "i深圳", "政务微信", "网格员采集", "视频智能识别")),
                F("受理时间", "Received at", dt="datetime", lvl=1),
                F("办结时间", "Closed at", dt="datetime", lvl=1),
                F("处置部门", "Handled by", sem="organization_name", lvl=1),
                F("诉求内容", "Complaint text", sem="free_text", lvl=2),
                F("诉求人姓名", "Complainant", sem="person_name", lvl=3),
                F("诉求人电话", "Complainant phone", sem="phone", lvl=3),
                F("满意度", "Satisfaction", sem="code_list", lvl=1, **codes("满意", "基本满意", "不满意")),
                F("事发地址", "Incident address", sem="address", lvl=2)),
               0.7, 0.2),
        Domain("MZ", "民政", ("民政", "救助", "养老", "民生"),
               (("assistance", "社会救助信息系统"), ("eldercare", "养老服务管理平台")),
               ("低保对象", "特困人员", "养老机构", "殡葬服务", "临时救助", "社区社会组织", "高龄津贴",
                "婚姻登记"),
               (F("救助类型", "Assistance type", sem="code_list", lvl=2, **codes("低保", "特困", "临时救助", "医疗救助")),
                F("救助金额", "Amount (CNY)", dt="decimal", lvl=3, minimum="0"),
                F("家庭人口数", "Household size", dt="integer", lvl=2, minimum="1", maximum="20"),
                F("认定日期", "Recognised on", dt="date", lvl=2),
                F("养老机构名称", "Care home", sem="organization_name", lvl=1),
                F("床位总数", "Beds", dt="integer", lvl=1, minimum="0"),
                F("护理等级", "Care level", sem="code_list", lvl=3, **codes("自理", "半失能", "失能")),
                F("津贴发放月份", "Allowance month", sem="identifier", lvl=2)),
               0.85, 0.2),
        Domain("RS", "就业", ("就业", "人社", "人才"),
               (("employment", "就业创业服务系统"), ("talent", "人才服务平台")),
               ("就业登记", "失业登记", "职业技能培训", "人才引进", "劳动仲裁", "招聘岗位", "劳动合同备案"),
               (F("用工单位", "Employer", sem="organization_name", lvl=1),
                F("岗位名称", "Job title", lvl=1),
                F("月工资元", "Monthly wage (CNY)", dt="decimal", lvl=3, minimum="0"),
                F("合同起始日期", "Contract start", dt="date", lvl=2),
                F("合同终止日期", "Contract end", dt="date", lvl=2),
                F("培训工种", "Trade", sem="code_list", lvl=1, **codes("电工", "焊工", "育婴员", "养老护理员", "计算机操作员")),
                F("职业资格等级", "Qualification level", sem="code_list", lvl=1, **codes("初级", "中级", "高级", "技师")),
                F("人才类别", "Talent category", sem="code_list", lvl=2, **codes("A类", "B类", "C类", "新引进人才")),
                F("仲裁案号", "Arbitration case", sem="identifier", lvl=2)),
               0.85, 0.4),
        Domain("SW", "税务", ("税务", "纳税", "营商环境"),
               (("tax", "金税管理系统"),),
               ("纳税人登记", "税收缴纳", "发票开具", "欠税公告", "纳税信用等级"),
               (F("纳税人识别号", "Taxpayer number", sem="uscc", lvl=2),
                F("纳税人名称", "Taxpayer", sem="organization_name", lvl=1),
                F("税种", "Tax type", sem="code_list", lvl=1, **codes("增值税", "企业所得税", "个人所得税", "房产税", "印花税")),
                F("税额", "Tax amount (CNY)", dt="decimal", lvl=3, minimum="0"),
                F("税款所属期起", "Period from", dt="date", lvl=2),
                F("税款所属期止", "Period to", dt="date", lvl=2),
                F("纳税信用等级", "Tax credit rating", sem="code_list", lvl=2, **codes("A", "B", "M", "C", "D")),
                F("欠税余额", "Arrears (CNY)", dt="decimal", lvl=2, minimum="0")),
               0.1, 0.95),
        Domain("CG", "城管", ("城管", "市容", "基层治理"),
               (("cityops", "智慧城管平台"),),
               ("占道经营", "市容环卫", "垃圾分类", "户外广告", "违法建筑", "环卫作业", "燃气安全"),
               (F("案件编号", "Case number", sem="identifier", lvl=1),
                F("问题类别", "Issue category", sem="code_list", lvl=1, **codes("占道经营", "乱堆乱放", "违规广告", "违法搭建", "垃圾满溢")),
                F("发现时间", "Found at", dt="datetime", lvl=1),
                F("处置时限", "Deadline", dt="datetime", lvl=1),
                F("问题地址", "Location", sem="address", lvl=2),
                F("垃圾清运量吨", "Waste collected (t)", dt="decimal", lvl=1, minimum="0"),
                F("执法人员", "Officer", sem="person_name", lvl=3),
                F("处罚金额", "Fine (CNY)", dt="decimal", lvl=2, minimum="0")),
               0.3, 0.4),
        Domain("YJ", "应急", ("应急", "安全生产", "消防"),
               (("safety", "安全生产监管平台"), ("emergency", "应急指挥系统")),
               ("安全生产企业", "危化品企业", "应急物资", "应急避难场所", "自然灾害", "消防隐患",
                "安全检查", "三小场所"),
               (F("风险等级", "Risk level", sem="code_list", lvl=2, **codes("重大", "较大", "一般", "低")),
                F("隐患描述", "Hazard", sem="free_text", lvl=2),
                F("检查日期", "Inspected on", dt="date", lvl=1),
                F("整改期限", "Fix by", dt="date", lvl=1),
                F("物资名称", "Supply", sem="code_list", lvl=2, **codes("帐篷", "救生衣", "沙袋", "发电机", "饮用水")),
                F("储备数量", "Quantity", dt="integer", lvl=2, minimum="0"),
                F("可容纳人数", "Capacity", dt="integer", lvl=1, minimum="0"),
                F("危化品名称", "Chemical", lvl=2),
                F("场所地址", "Site address", sem="address", lvl=2)),
               0.15, 0.7),
        Domain("SH", "水务", ("水务", "供水", "防汛"),
               (("water", "智慧水务平台"),),
               ("供水用户", "用水量", "排水许可", "河道监测", "水库水位", "防汛物资"),
               (F("水表编号", "Meter number", sem="identifier", lvl=2),
                F("用水量立方米", "Water used (m3)", dt="decimal", lvl=2, minimum="0"),
                F("抄表日期", "Read on", dt="date", lvl=1),
                F("用户类型", "Customer type", sem="code_list", lvl=1, **codes("居民", "非居民", "特种行业")),
                F("水位米", "Water level (m)", dt="decimal", lvl=1),
                F("河道名称", "River", sem="code_list", lvl=1, **codes("坪山河", "赤坳水", "田坑水", "汤坑水")),
                F("用水地址", "Service address", sem="address", lvl=2)),
               0.4, 0.3),
        Domain("XY", "信用", ("信用", "诚信", "营商环境"),
               (("credit", "公共信用信息系统"),),
               ("信用评价", "失信被执行人", "信用红名单", "信用黑名单", "行政许可公示", "信用承诺"),
               (F("信用主体名称", "Subject", sem="organization_name", lvl=1),
                F("信用等级", "Credit rating", sem="code_list", lvl=2, **codes("A", "B", "C", "D")),
                F("列入日期", "Listed on", dt="date", lvl=1),
                F("移出日期", "Removed on", dt="date", lvl=1),
                F("认定机关", "Authority", sem="organization_name", lvl=1),
                F("执行案号", "Enforcement case", sem="identifier", lvl=1),
                F("失信行为", "Conduct", sem="free_text", lvl=2)),
               0.3, 0.8),
        Domain("GH", "规划", ("规划", "自然资源", "土地"),
               (("landuse", "国土空间规划信息平台"),),
               ("建设用地", "建设工程规划许可", "土地出让", "地名地址", "城市更新项目", "土地整备"),
               (F("宗地号", "Parcel number", sem="identifier", lvl=1),
                F("用地面积", "Land area (m2)", dt="decimal", lvl=1, minimum="0"),
                F("用地性质", "Land use", sem="code_list", lvl=1, **codes("居住用地", "商业用地", "工业用地", "公共设施用地")),
                F("许可证号", "Permit number", sem="identifier", lvl=1),
                F("项目名称", "Project", lvl=1),
                F("出让价款万元", "Price (10k CNY)", dt="decimal", lvl=2, minimum="0"),
                F("标准地址", "Standard address", sem="address", lvl=2),
                F("容积率", "Floor area ratio", dt="decimal", lvl=1, minimum="0")),
               0.1, 0.6),
        Domain("WL", "文旅", ("文旅", "文化", "旅游", "体育"),
               (("culture", "文化旅游综合服务平台"),),
               ("旅游景区", "文化场馆", "体育场馆", "旅行社", "文物保护单位", "公共图书馆借阅", "文化活动"),
               (F("场馆名称", "Venue", sem="organization_name", lvl=1),
                F("景区等级", "Scenic rating", sem="code_list", lvl=1, **codes("5A", "4A", "3A", "其他")),
                F("开放时间", "Opening hours", lvl=1),
                F("接待人次", "Visitors", dt="integer", lvl=1, minimum="0"),
                F("活动日期", "Event date", dt="date", lvl=1),
                F("读者证号", "Reader card", sem="identifier", lvl=2),
                F("文物级别", "Heritage grade", sem="code_list", lvl=1, **codes("国家级", "省级", "市级", "区级"))),
               0.3, 0.4),
    ]
}  # fmt: skip

QUALIFIERS = ["信息", "基本信息", "登记信息", "明细", "台账", "名录", "统计", "变更记录", "业务数据", "档案"]
CROSS_TAGS = [
    "数字政府",
    "一网通办",
    "一网统管",
    "主题库",
    "专题库",
    "基层治理",
    "民生",
    "营商环境",
    "统计分析",
]
USAGE = [
    "供区内各部门开展基层治理和政务服务使用",
    "用于数据核查与比对",
    "含个人敏感信息，按最小必要原则申请",
    "支撑一网统管城市运行体征监测",
    "向社会开放的部分已脱敏",
    "按季度与市级平台对账",
    "供统计分析与决策参考",
]
PRESETS = ["@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"]
PRESET_WEIGHTS = [5, 40, 20, 20, 10, 5]
CRONS = ["0 2 * * *", "30 1 * * *", "0 * * * *", "0 */6 * * *", "15 3 * * 1", "0 4 1 * *", "45 23 * * 0",
         "0 8-18 * * 1-5", "10 0 1 1,4,7,10 *", "*/30 * * * *"]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Departments


@dataclass(frozen=True)
class DepartmentTemplate:
    code: str
    name_zh: str
    name_en: str
    kind: str
    domains: tuple[str, ...]


_CITY = [  # (code, name, english, domains): Shenzhen city departments' Pingshan branches
    ("psga", "深圳市公安局坪山分局", "Pingshan Public Security Sub-bureau", ("RK", "JT")),
    ("scjg", "深圳市市场监督管理局坪山监管局", "Pingshan Market Regulation Bureau", ("FR", "XY")),
    ("ghzy", "深圳市规划和自然资源局坪山管理局", "Pingshan Planning and Natural Resources Bureau", ("GH", "FW")),
    ("sthj", "深圳市生态环境局坪山管理局", "Pingshan Ecology and Environment Bureau", ("HJ",)),
    ("jtys", "深圳市交通运输局坪山管理局", "Pingshan Transport Bureau", ("JT",)),
    ("jjdd", "深圳市公安局交通警察支队坪山大队", "Pingshan Traffic Police Brigade", ("JT",)),
    ("swj", "国家税务总局深圳市坪山区税务局", "Pingshan Tax Bureau", ("SW", "FR")),
    ("sbj", "深圳市社会保险基金管理局坪山分局", "Pingshan Social Insurance Fund Sub-bureau", ("SB",)),
    ("gjj", "深圳市住房公积金管理中心坪山管理部", "Pingshan Housing Provident Fund Office", ("SB", "FW")),
    ("bdc", "深圳市不动产登记中心坪山登记所", "Pingshan Real Estate Registration Office", ("FW",)),
    ("ybj", "深圳市医疗保障局坪山分局", "Pingshan Healthcare Security Sub-bureau", ("SB", "YL")),
    ("xfdd", "深圳市消防救援支队坪山大队", "Pingshan Fire and Rescue Brigade", ("YJ",)),
    ("qxj", "深圳市气象局坪山气象站", "Pingshan Weather Station", ("HJ", "YJ")),
    ("rsj", "深圳市人力资源和社会保障局坪山分局", "Pingshan Human Resources Sub-bureau", ("RS", "SB")),
    ("crj", "深圳市公安局出入境管理支队坪山大队", "Pingshan Exit-Entry Brigade", ("RK",)),
    ("ycj", "深圳市烟草专卖局坪山分局", "Pingshan Tobacco Monopoly Sub-bureau", ("FR",)),
    ("gdj", "深圳供电局坪山供电局", "Pingshan Power Supply Bureau", ("FW", "SH")),
    ("swjt", "深圳市水务集团坪山水务有限公司", "Pingshan Water Company", ("SH",)),
    ("rqjt", "深圳市燃气集团坪山分公司", "Pingshan Gas Company", ("YJ", "FW")),
    ("jzjc", "深圳市建设工程质量检测中心坪山站", "Pingshan Construction Quality Station", ("GH", "YJ")),
    ("wjw", "深圳市卫生健康委员会坪山监督所", "Pingshan Health Inspection Office", ("YL",)),
    ("jyj", "深圳市教育局坪山教育服务中心", "Pingshan Education Service Centre", ("JY",)),
    ("whj", "深圳市文化广电旅游体育局坪山办事处", "Pingshan Culture and Tourism Office", ("WL",)),
    ("tjj", "国家统计局深圳调查队坪山调查组", "Pingshan Survey Team", ("RK", "FR")),
    ("fyzx", "深圳市公证处坪山办证点", "Pingshan Notary Office", ("FR", "XY")),
    ("gadj", "深圳市公安局坪山分局户政大队", "Pingshan Household Registration Brigade", ("RK",)),
    ("zjjdd", "深圳市市场监督管理局坪山食品药品稽查大队", "Pingshan Food and Drug Inspection Brigade", ("FR", "YL")),
    ("cgzd", "深圳市城市管理和综合执法局坪山支队", "Pingshan Urban Management Detachment", ("CG",)),
]  # fmt: skip
_DISTRICT = [  # (code, name, english, domains): Pingshan district units
    ("fgj", "坪山区发展和改革局", "Pingshan Development and Reform Bureau", ("FR", "XY")),
    ("jyju", "坪山区教育局", "Pingshan Education Bureau", ("JY",)),
    ("kcj", "坪山区科技创新局", "Pingshan Science and Technology Bureau", ("FR", "RS")),
    ("gxj", "坪山区工业和信息化局", "Pingshan Industry and IT Bureau", ("FR",)),
    ("mzj", "坪山区民政局", "Pingshan Civil Affairs Bureau", ("MZ", "RK")),
    ("sfj", "坪山区司法局", "Pingshan Justice Bureau", ("SQ", "XY")),
    ("czj", "坪山区财政局", "Pingshan Finance Bureau", ("FR", "SB")),
    ("rlzy", "坪山区人力资源局", "Pingshan Human Resources Bureau", ("RS", "SB")),
    ("zjj", "坪山区住房和建设局", "Pingshan Housing and Construction Bureau", ("FW", "GH")),
    ("swju", "坪山区水务局", "Pingshan Water Bureau", ("SH", "HJ")),
    ("wtj", "坪山区文化广电旅游体育局", "Pingshan Culture, Tourism and Sports Bureau", ("WL",)),
    ("wjj", "坪山区卫生健康局", "Pingshan Health Commission", ("YL", "RK")),
    ("yjj", "坪山区应急管理局", "Pingshan Emergency Management Bureau", ("YJ",)),
    ("sjj", "坪山区审计局", "Pingshan Audit Bureau", ("FR",)),
    ("tjju", "坪山区统计局", "Pingshan Statistics Bureau", ("RK", "FR")),
    ("cgj", "坪山区城市管理和综合执法局", "Pingshan Urban Management Bureau", ("CG", "HJ")),
    ("zsj", "坪山区政务服务和数据管理局", "Pingshan Government Services and Data Administration", ("SQ", "FR")),
    ("tyjr", "坪山区退役军人事务局", "Pingshan Veterans Affairs Bureau", ("MZ", "RK")),
    ("xfj", "坪山区信访局", "Pingshan Petitions Bureau", ("SQ",)),
    ("gzj", "坪山区国有资产监督管理局", "Pingshan State Assets Bureau", ("FR",)),
    ("tzfw", "坪山区投资推广和企业服务中心", "Pingshan Investment Promotion Centre", ("FR", "XY")),
    ("jkzx", "坪山区疾病预防控制中心", "Pingshan Centre for Disease Control", ("YL",)),
    ("rmyy", "坪山区人民医院", "Pingshan People's Hospital", ("YL",)),
    ("zyy", "坪山区中医院", "Pingshan Hospital of Traditional Chinese Medicine", ("YL",)),
    ("fybj", "坪山区妇幼保健院", "Pingshan Maternal and Child Health Hospital", ("YL", "RK")),
    ("flzx", "坪山区社会福利中心", "Pingshan Social Welfare Centre", ("MZ",)),
    ("clzx", "坪山区残疾人联合会", "Pingshan Disabled Persons' Federation", ("MZ", "RK")),
    ("zgh", "坪山区总工会", "Pingshan Federation of Trade Unions", ("RS",)),
    ("flh", "坪山区妇女联合会", "Pingshan Women's Federation", ("MZ", "SQ")),
    ("dag", "坪山区档案馆", "Pingshan Archives", ("RK", "FR")),
    ("tsg", "坪山区图书馆", "Pingshan Library", ("WL",)),
    ("jyzx", "坪山区公共资源交易中心", "Pingshan Public Resources Trading Centre", ("FR", "GH")),
    ("gws", "坪山区建筑工务署", "Pingshan Public Works Bureau", ("GH", "FW")),
    ("gxtz", "坪山区城市更新和土地整备局", "Pingshan Urban Renewal and Land Bureau", ("GH", "FW")),
    ("jgsw", "坪山区机关事务管理局", "Pingshan Government Offices Administration", ("FW",)),
    ("wgzx", "坪山区网格管理中心", "Pingshan Grid Management Centre", ("SQ", "RK")),
    ("zzzx", "坪山区社会治安综合治理中心", "Pingshan Social Governance Centre", ("SQ",)),
    ("fy", "坪山区人民法院", "Pingshan People's Court", ("XY", "SQ")),
    ("jcy", "坪山区人民检察院", "Pingshan People's Procuratorate", ("XY",)),
    ("zlsgl", "坪山区房屋租赁管理所", "Pingshan Rental Housing Office", ("FW", "RK")),
    ("ldjc", "坪山区劳动监察大队", "Pingshan Labour Inspection Brigade", ("RS",)),
    ("lhhj", "坪山区绿化和环境卫生管理所", "Pingshan Greening and Sanitation Office", ("CG", "HJ")),
    ("jtzx", "坪山区智慧交通运行中心", "Pingshan Smart Traffic Centre", ("JT",)),
    ("xmzx", "坪山区公共信用服务中心", "Pingshan Public Credit Service Centre", ("XY",)),
    ("zxzx", "坪山区政务服务中心", "Pingshan Government Service Centre", ("FR", "RK")),
    ("sqjz", "坪山区社区矫正管理局", "Pingshan Community Corrections Office", ("RK", "SQ")),
    ("tyzx", "坪山区体育中心", "Pingshan Sports Centre", ("WL",)),
    ("qxzx", "坪山区青少年活动中心", "Pingshan Youth Centre", ("JY", "WL")),
]  # fmt: skip
_STREET_CODES = ["ps", "ml", "bl", "sj", "kz", "lt"]
_STREET_EN = ["Pingshan", "Maluan", "Biling", "Shijing", "Kengzi", "Longtian"]
_STREET_UNITS = [  # (code suffix, name suffix, english suffix, domains)
    ("jd", "街道办事处", "Street Office", ("SQ", "RK", "MZ")),
    ("zf", "街道综合行政执法队", "Street Enforcement Team", ("CG", "YJ")),
    ("wg", "街道网格管理中心", "Street Grid Centre", ("SQ", "RK", "FW")),
    ("dq", "街道党群服务中心", "Street Community Service Centre", ("MZ", "WL")),
    ("aq", "街道安全生产监督管理办公室", "Street Work Safety Office", ("YJ",)),
]


def _department_pool() -> list[DepartmentTemplate]:
    """Every known department, the three kinds interleaved so that any prefix mixes them."""
    city = [DepartmentTemplate(c, z, e, "city_department", d) for c, z, e, d in _CITY]
    district = [DepartmentTemplate(c, z, e, "district_unit", d) for c, z, e, d in _DISTRICT]
    street = [
        DepartmentTemplate(f"{code}{suffix}", f"坪山区{name[:2]}{zh}", f"{english} {en}", "street_office", domains)
        for suffix, zh, en, domains in _STREET_UNITS
        for code, name, english in zip(_STREET_CODES, STREETS, _STREET_EN, strict=True)
    ]
    pool: list[DepartmentTemplate] = []
    queues = [district, city, street]
    while any(queues):
        for queue in queues:
            if queue:
                pool.append(queue.pop(0))
    return pool


# --------------------------------------------------------------------------------------------------
# Generation


def _frequency(rng: random.Random) -> str:
    if rng.random() < 0.65:
        return rng.choices(PRESETS, PRESET_WEIGHTS)[0]
    return rng.choice(CRONS)


def _frequency_text(frequency: str) -> str:
    return {
        "@hourly": "每小时更新",
        "@daily": "每日更新",
        "@weekly": "每周更新",
        "@monthly": "每月更新",
        "@quarterly": "每季度更新",
        "@yearly": "每年更新",
    }.get(frequency, f"按计划（{frequency}）定时导出")


def _field_counts(rng: random.Random, items: int, per_item: int) -> list[int]:
    """Fields per item, spread around the average, summing exactly to items * per_item."""
    low, high = max(1, per_item - 12), per_item + 12
    counts = [rng.randint(low, high) for _ in range(items)]
    difference = items * per_item - sum(counts)
    step = 1 if difference > 0 else -1
    while difference:
        index = rng.randrange(items)
        if low <= counts[index] + step <= high:
            counts[index] += step
            difference -= step
    return counts


def _level(rng: random.Random, template: FieldTemplate) -> int:
    minimum = MINIMUM_LEVELS.get(template.semantic_type, 1)
    level = max(template.level, minimum)
    roll = rng.random()
    if roll < 0.06 and level < 3:  # a reviewer judged it more sensitive than its kind
        level += 1
    elif 0.06 <= roll < 0.075 and level == 3:  # now and then core data (核心), the highest level
        level = 4
    elif roll < 0.12 and level > minimum:
        level -= 1
    return max(minimum, min(MAX_LEVEL, level))


def _field(rng: random.Random, template: FieldTemplate, key: bool = False) -> dict[str, Any]:
    declared: dict[str, Any] = {"name": template.name, "label": template.label}
    if template.data_type != "string":
        declared["data_type"] = template.data_type
    if key:
        declared["key"] = True
    elif rng.random() < 0.3:
        declared["nullable"] = False
    if template.semantic_type != "none":
        declared["semantic_type"] = template.semantic_type
    # Copies: a list shared between fields would be written as a YAML anchor and alias.
    declared.update({name: list(value) if isinstance(value, list) else value for name, value in template.extra.items()})
    if rng.random() < 0.12:
        declared["description"] = rng.choice(
            ["以业务系统登记为准", "为空表示未采集", "按国家标准编码", "历史数据可能缺失", "每次变更时更新"]
        )
    declared["level"] = _level(rng, template)
    if template.semantic_type == "resident_id" and rng.random() < 0.2:
        declared["masking"] = "hash"
    return declared


def _public(template: FieldTemplate) -> bool:
    return MINIMUM_LEVELS.get(template.semantic_type, 1) == 1 and template.level <= 2


def _fields(rng: random.Random, domain: Domain, subject: str, count: int, public: bool) -> list[dict[str, Any]]:
    """The fields of one item; a public item (open data and the like) carries no personal data."""
    about_person = not public and rng.random() < domain.person
    about_organization = rng.random() < domain.organization
    if about_person and rng.random() < 0.5:
        key_template = PERSON_FIELDS[1]  # 公民身份号码
    elif about_organization and not about_person and rng.random() < 0.6:
        key_template = ORGANIZATION_FIELDS[0]  # 统一社会信用代码
    else:
        key_template = F(f"{subject}编号", "Record number", sem="identifier", lvl=1)
    pools: list[list[FieldTemplate]] = [list(domain.fields)]
    if about_person:
        pools.append(list(PERSON_FIELDS))
    if about_organization:
        pools.append(list(ORGANIZATION_FIELDS))
    pools.append(list(COMMON_FIELDS))
    if public:
        pools = [[template for template in pool if _public(template)] for pool in pools]
    for pool in pools:
        rng.shuffle(pool)
    chosen = [key_template]
    names = {key_template.name}
    # Take mostly from the domain and subject pools, then fill with common fields.
    for pool in pools:
        take = len(pool) if pool is pools[-1] else rng.randint(len(pool) // 2, len(pool))
        for template in pool[:take]:
            if len(chosen) >= count:
                break
            if template.name not in names:
                chosen.append(template)
                names.add(template.name)
    for pool in pools:  # still short: the rest of every pool
        for template in pool:
            if len(chosen) >= count:
                break
            if template.name not in names:
                chosen.append(template)
                names.add(template.name)
    extension = 1
    while len(chosen) < count:  # very wide items: numbered extension attributes
        chosen.append(F(f"扩展属性{extension:02d}", f"Extension attribute {extension}", lvl=1))
        extension += 1
    fields = [_field(rng, key_template, key=True)]
    fields += [_field(rng, template) for template in chosen[1:]]
    if public:  # reviewed down to public, but for the odd internal field
        for declared in fields:
            declared["level"] = 1 if rng.random() < 0.9 else min(declared["level"], 2)
    if rng.random() < 0.1 and count > 2:  # a composite key now and then
        second = next((f for f in fields[1:] if f.get("data_type") != "boolean"), None)
        if second is not None:
            second["key"] = True
            second.pop("nullable", None)
    return fields


def _source_systems(rng: random.Random, department: DepartmentTemplate) -> list[dict[str, Any]]:
    candidates = [system for code in department.domains for system in DOMAINS[code].systems]
    candidates = list(dict.fromkeys(candidates))
    count = 2 if len(candidates) > 1 and rng.random() < 0.4 else 1
    systems = []
    for code, name in rng.sample(candidates, count):
        roll = rng.random()
        system: dict[str, Any] = {"code": code, "name": name}
        if roll < 0.7:
            fmt = rng.choices(["csv", "json", "xlsx"], [6, 3, 1])[0]
            system |= {
                "access": "file_drop",
                "location": f"drop/{department.code}/{code}",
                "file_pattern": f"{department.code}_{code}_*.{fmt}",
                "format": fmt,
                "encoding": rng.choice(["auto", "utf-8", "gb18030"]) if fmt == "csv" else "utf-8",
            }
        elif roll < 0.9:
            system |= {
                "access": "sql",
                "location": f"env:{department.code.upper()}_{code.upper()}_DB_URL",
                "query": f"select * from v_share_{code}",
            }
        else:
            system |= {
                "access": "http",
                "location": f"https://api.{department.code}.example.gov.cn/{code}/export",
                "format": "json",
                "encoding": "utf-8",
            }
        systems.append(system)
    return systems


def generate_catalog(
    items: int = 10_000, fields_per_item: int = 20, departments: int = 100, seed: int = 20261123
) -> dict[str, Any]:
    """The catalog as plain data (the shape of a parsed catalog file)."""
    if items < 1 or fields_per_item < 1 or departments < 1:
        raise ValueError("items, fields_per_item and departments must be positive")
    rng = random.Random(seed)
    pool = _department_pool()
    chosen = pool[:departments]
    serial = 2
    while len(chosen) < departments:  # more than the pool: numbered offices of the same units
        for template in pool:
            if len(chosen) >= departments:
                break
            chosen.append(
                DepartmentTemplate(
                    f"{template.code}{serial}",
                    f"{template.name_zh}第{serial}办公室",
                    f"{template.name_en} office {serial}",
                    template.kind,
                    template.domains,
                )
            )
        serial += 1
    department_data: list[dict[str, Any]] = []
    systems_of: dict[str, list[dict[str, Any]]] = {}
    for template in chosen:
        declared: dict[str, Any] = {
            "code": template.code,
            "name_zh": template.name_zh,
            "name_en": template.name_en,
            "kind": template.kind,
        }
        if rng.random() < 0.03:
            declared["active"] = False
        systems = _source_systems(rng, template)
        declared["source_systems"] = systems
        systems_of[template.code] = systems
        department_data.append(declared)

    # Items per department: uneven, as in real catalogs (a few large providers, a long tail).
    weights = [rng.lognormvariate(0, 0.8) for _ in chosen]
    owners = rng.choices(range(len(chosen)), weights, k=items)
    owners.sort()
    counts = _field_counts(rng, items, fields_per_item)
    serials: dict[str, int] = {}
    item_data: list[dict[str, Any]] = []
    for owner, field_count in zip(owners, counts, strict=True):
        department = chosen[owner]
        domain = DOMAINS[rng.choice(department.domains)]
        subject = rng.choice(domain.subjects)
        qualifier = rng.choice(QUALIFIERS)
        title = f"{subject}{qualifier}"
        if rng.random() < 0.1:
            title = f"{rng.randint(2015, 2026)}年度{title}"
        elif rng.random() < 0.05:
            title = f"{title}（按月汇总）"
        prefix = f"{department.code.upper()}-{domain.code}"
        serials[prefix] = serials.get(prefix, 0) + 1
        code = f"{prefix}-{serials[prefix]:04d}"
        systems = systems_of[department.code]
        system = rng.choice(systems) if rng.random() < 0.95 else None
        frequency = _frequency(rng)
        source_text = f"来自{system['name']}" if system else "由部门人工报送"
        description = (
            f"{department.name_zh}{subject}{qualifier}，{source_text}，{_frequency_text(frequency)}；"
            f"{rng.choice(USAGE)}。"
        )
        sharing = rng.choices(["unconditional", "conditional", "not_shared"], [35, 55, 10])[0]
        status = rng.choices(["published", "in_review", "draft", "retired"], [70, 10, 15, 5])[0]
        tags = rng.sample(domain.tags, rng.randint(1, min(3, len(domain.tags))))
        if rng.random() < 0.4:
            tags.append(rng.choice(CROSS_TAGS))
        declared_item: dict[str, Any] = {
            "code": code,
            "title": title,
            "description": description,
            "department": department.code,
        }
        if system is not None:
            declared_item["source_system"] = system["code"]
        declared_item |= {"update_frequency": frequency, "sharing_type": sharing}
        open_data = sharing != "not_shared" and rng.random() < 0.15
        if open_data:
            declared_item["open_data"] = True
        public = open_data or rng.random() < 0.1
        declared_item |= {
            "tags": sorted(set(tags)),
            "status": status,
            "fields": _fields(rng, domain, subject, field_count, public),
        }
        item_data.append(declared_item)
    return {"version": 1, "departments": department_data, "items": item_data}


def dump_yaml(catalog: dict[str, Any]) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    header = (
        "# Generated by bench/generate_catalog.py for the catalog benchmark; do not edit by hand.\n"
        f"# {len(catalog['departments'])} departments, {len(catalog['items'])} items, "
        f"{sum(len(item['fields']) for item in catalog['items'])} fields.\n"
    )
    # default_flow_style=None: leaf mappings such as simple fields go on one line, as in the demo file.
    return header + yaml.dump(
        catalog, Dumper=dumper, allow_unicode=True, sort_keys=False, width=120, default_flow_style=None
    )


def write_catalog(
    path: Path, items: int = 10_000, fields_per_item: int = 20, departments: int = 100, seed: int = 20261123
) -> dict[str, Any]:
    """Generate and write the catalog file; returns the catalog data."""
    catalog = generate_catalog(items, fields_per_item, departments, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(catalog), encoding="utf-8")
    return catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the YAML file to write")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--fields-per-item", type=int, default=20, help="average; the total is exact")
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--no-check", action="store_true", help="skip validating the written file against the catalog schema"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    catalog = write_catalog(args.output, args.items, args.fields_per_item, args.departments, args.seed)
    fields = sum(len(item["fields"]) for item in catalog["items"])
    size = args.output.stat().st_size
    print(
        f"wrote {args.output}: {len(catalog['departments'])} departments, {len(catalog['items'])} items, "
        f"{fields} fields, {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s"
    )
    if not args.no_check:
        from catalog.declarations.service import read_catalog_file

        started = time.perf_counter()
        read_catalog_file(args.output)  # raises InvalidDeclaration with every problem
        print(f"the file parses and validates as a catalog file ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
