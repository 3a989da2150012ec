<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="ar" sourcelanguage="en">
<context>
    <name>Alerts</name>
    <message>
        <source>This terminal is no longer authorized by the school ({problem}). Sales stay saved here but cannot be sent. Call the school office.</source>
        <translation>لم تعد المدرسة تأذن لهذا الجهاز ({problem}). المبيعات محفوظة هنا لكن لا يمكن إرسالها. اتصل بمكتب المدرسة.</translation>
    </message>
    <message>
        <source>This terminal is no longer authorized by the school (revoked): selling is stopped. Sales saved here stay on it but cannot be sent. Call the school office.</source>
        <translation>ألغت المدرسة تفويض هذا الجهاز: البيع متوقف. المبيعات المحفوظة هنا تبقى عليه لكن لا يمكن إرسالها. اتصل بمكتب المدرسة.</translation>
    </message>
    <message>
        <source>This terminal&apos;s clock is behind: it shows {shows}, but this terminal has already seen {known}. Sales are refused until the date and time are set right and the terminal syncs.</source>
        <translation>ساعة هذا الجهاز متأخرة: تُظهر {shows}، لكنه سبق أن رأى {known}. تُرفض المبيعات حتى يُضبط التاريخ والوقت وتتم المزامنة.</translation>
    </message>
    <message>
        <source>1 sale was rejected or in conflict on the server. Open History (F4) to see them.</source>
        <translation>رُفضت عملية بيع واحدة أو تعارضت على الخادم. افتح السجل (F4) لمراجعتها.</translation>
    </message>
    <message>
        <source>{count} sales were rejected or in conflict on the server. Open History (F4) to see them.</source>
        <translation>عمليات بيع رُفضت أو تعارضت على الخادم: {count}. افتح السجل (F4) لمراجعتها.</translation>
    </message>
    <message>
        <source>Offline limit nearly reached: {waiting} waiting to sync, the limit is {cap}. Connect the terminal to the network.</source>
        <translation>اقترب حد البيع دون اتصال: {waiting} بانتظار المزامنة، والحد {cap}. وصّل الجهاز بالشبكة.</translation>
    </message>
    <message>
        <source>Not synced for {hours} hours; selling stops after {limit} hours. Connect the terminal to the network.</source>
        <translation>لم تتم المزامنة منذ {hours} ساعة؛ يتوقف البيع بعد {limit} ساعة. وصّل الجهاز بالشبكة.</translation>
    </message>
    <message>
        <source>Offline: the server cannot be reached. Sales are saved on this terminal and will be sent automatically.</source>
        <translation>غير متصل: تعذّر الوصول إلى الخادم. تُحفظ المبيعات على هذا الجهاز وتُرسل تلقائيًا.</translation>
    </message>
    <message>
        <source>revoked</source>
        <translation>أُلغي تفويضه</translation>
    </message>
    <message>
        <source>unauthorized</source>
        <translation>غير مصرّح له</translation>
    </message>
</context>
<context>
    <name>Allergens</name>
    <message>
        <source>peanut</source>
        <translation>الفول السوداني</translation>
    </message>
    <message>
        <source>peanuts</source>
        <translation>الفول السوداني</translation>
    </message>
    <message>
        <source>tree nuts</source>
        <translation>المكسرات الشجرية</translation>
    </message>
    <message>
        <source>nuts</source>
        <translation>المكسرات</translation>
    </message>
    <message>
        <source>milk</source>
        <translation>الحليب</translation>
    </message>
    <message>
        <source>dairy</source>
        <translation>الألبان</translation>
    </message>
    <message>
        <source>lactose</source>
        <translation>اللاكتوز</translation>
    </message>
    <message>
        <source>egg</source>
        <translation>البيض</translation>
    </message>
    <message>
        <source>eggs</source>
        <translation>البيض</translation>
    </message>
    <message>
        <source>gluten</source>
        <translation>الغلوتين</translation>
    </message>
    <message>
        <source>wheat</source>
        <translation>القمح</translation>
    </message>
    <message>
        <source>soy</source>
        <translation>الصويا</translation>
    </message>
    <message>
        <source>sesame</source>
        <translation>السمسم</translation>
    </message>
    <message>
        <source>fish</source>
        <translation>السمك</translation>
    </message>
    <message>
        <source>shellfish</source>
        <translation>المحار والقشريات</translation>
    </message>
    <message>
        <source>crustaceans</source>
        <translation>القشريات</translation>
    </message>
    <message>
        <source>mustard</source>
        <translation>الخردل</translation>
    </message>
    <message>
        <source>celery</source>
        <translation>الكرفس</translation>
    </message>
    <message>
        <source>lupin</source>
        <translation>الترمس</translation>
    </message>
    <message>
        <source>molluscs</source>
        <translation>الرخويات</translation>
    </message>
    <message>
        <source>sulphites</source>
        <translation>الكبريتيت</translation>
    </message>
</context>
<context>
    <name>Banner</name>
    <message>
        <source>(+%1 more)</source>
        <translation>(+%1 أخرى)</translation>
    </message>
    <message>
        <source>Seen</source>
        <translation>اطّلعت</translation>
    </message>
</context>
<context>
    <name>CartModel</name>
    <message>
        <source>Item</source>
        <translation>الصنف</translation>
    </message>
    <message>
        <source>Qty</source>
        <translation>الكمية</translation>
    </message>
    <message>
        <source>Amount</source>
        <translation>المبلغ</translation>
    </message>
</context>
<context>
    <name>DemoPanel</name>
    <message>
        <source>Demo bracelets (simulated reader)</source>
        <translation>أساور تجريبية (قارئ محاكى)</translation>
    </message>
    <message>
        <source>Double-click (or Enter) to tap a bracelet:</source>
        <translation>انقر نقرًا مزدوجًا (أو Enter) لتمرير سوار:</translation>
    </message>
    <message>
        <source>Tap</source>
        <translation>تمرير</translation>
    </message>
    <message>
        <source>Unplug reader</source>
        <translation>افصل القارئ</translation>
    </message>
    <message>
        <source>Plug reader in</source>
        <translation>وصّل القارئ</translation>
    </message>
    <message>
        <source>blocked</source>
        <translation>محظور</translation>
    </message>
</context>
<context>
    <name>EnrollView</name>
    <message>
        <source>Set up this terminal</source>
        <translation>إعداد هذا الجهاز</translation>
    </message>
    <message>
        <source>Enter the server address and the one-time enrollment code from the school&apos;s admin console.</source>
        <translation>أدخل عنوان الخادم ورمز التسجيل لمرة واحدة من لوحة إدارة المدرسة.</translation>
    </message>
    <message>
        <source>enrollment code</source>
        <translation>رمز التسجيل</translation>
    </message>
    <message>
        <source>Server</source>
        <translation>الخادم</translation>
    </message>
    <message>
        <source>Code</source>
        <translation>الرمز</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>الاسم</translation>
    </message>
    <message>
        <source>Enroll  (Enter)</source>
        <translation>تسجيل  (Enter)</translation>
    </message>
    <message>
        <source>Both the server address and the code are needed.</source>
        <translation>يلزم عنوان الخادم والرمز كلاهما.</translation>
    </message>
    <message>
        <source>Enrolling… (this takes a few seconds)</source>
        <translation>جارٍ التسجيل… (يستغرق بضع ثوانٍ)</translation>
    </message>
    <message>
        <source>Enrollment failed: %1</source>
        <translation>فشل التسجيل: %1</translation>
    </message>
    <message>
        <source>Enrolled, but the first snapshot failed: %1. It will be retried.</source>
        <translation>تم التسجيل، لكن تعذّر تنزيل البيانات الأولى: %1. ستُعاد المحاولة.</translation>
    </message>
</context>
<context>
    <name>HistoryModel</name>
    <message>
        <source>Time</source>
        <translation>الوقت</translation>
    </message>
    <message>
        <source>Student</source>
        <translation>الطالب</translation>
    </message>
    <message>
        <source>Items</source>
        <translation>الأصناف</translation>
    </message>
    <message>
        <source>Amount</source>
        <translation>المبلغ</translation>
    </message>
    <message>
        <source>Sync</source>
        <translation>المزامنة</translation>
    </message>
    <message>
        <source>waiting to sync</source>
        <translation>بانتظار المزامنة</translation>
    </message>
    <message>
        <source>synced (overdraft)</source>
        <translation>تمت المزامنة (تجاوز الرصيد)</translation>
    </message>
    <message>
        <source>synced</source>
        <translation>تمت المزامنة</translation>
    </message>
    <message>
        <source>by the server</source>
        <translation>من الخادم</translation>
    </message>
    <message>
        <source>REJECTED: %1</source>
        <translation>مرفوض: %1</translation>
    </message>
    <message>
        <source>on the server</source>
        <translation>على الخادم</translation>
    </message>
    <message>
        <source>CONFLICT: %1</source>
        <translation>تعارض: %1</translation>
    </message>
    <message>
        <source>%1 (by name)</source>
        <translation>%1 (بالاسم)</translation>
    </message>
    <message>
        <source>, </source>
        <translation>، </translation>
    </message>
    <message>
        <source>VOID of #%1: %2</source>
        <translation>إلغاء رقم %1: %2</translation>
    </message>
    <message>
        <source>(voided) %1</source>
        <translation>(ملغى) %1</translation>
    </message>
</context>
<context>
    <name>HistoryView</name>
    <message>
        <source>Recent sales on this terminal</source>
        <translation>آخر المبيعات على هذا الجهاز</translation>
    </message>
    <message>
        <source>Void sale (V)</source>
        <translation>إلغاء البيع (V)</translation>
    </message>
    <message>
        <source>Back to sale (Esc)</source>
        <translation>العودة إلى البيع (Esc)</translation>
    </message>
    <message>
        <source>Select a sale to void.</source>
        <translation>اختر بيعة لإلغائها.</translation>
    </message>
    <message>
        <source>That line is a void; select the sale itself.</source>
        <translation>هذا السطر إلغاء؛ اختر البيعة نفسها.</translation>
    </message>
    <message>
        <source>Void sale #%1 of %2 for %3?
The money goes back to the student.</source>
        <translation>إلغاء البيعة رقم %1 لـ %2 بمبلغ %3؟
يُعاد المبلغ إلى الطالب.</translation>
    </message>
    <message>
        <source>Void sale</source>
        <translation>إلغاء البيع</translation>
    </message>
</context>
<context>
    <name>LoginView</name>
    <message>
        <source>Who is selling?</source>
        <translation>من يبيع الآن؟</translation>
    </message>
    <message>
        <source>PIN</source>
        <translation>الرمز السري</translation>
    </message>
    <message>
        <source>OK</source>
        <translation>موافق</translation>
    </message>
    <message>
        <source>Too many wrong PINs. Try again in %1 s or ask another cashier to log in.</source>
        <translation>محاولات خاطئة كثيرة. حاول مجددًا بعد %1 ث أو اطلب من كاشير آخر تسجيل الدخول.</translation>
    </message>
    <message>
        <source>No cashiers on this terminal yet: waiting for the first sync.</source>
        <translation>لا يوجد كاشير على هذا الجهاز بعد: بانتظار أول مزامنة.</translation>
    </message>
    <message>
        <source>Checking…</source>
        <translation>جارٍ التحقق…</translation>
    </message>
    <message>
        <source>Wrong PIN. Try again.</source>
        <translation>الرمز السري خاطئ. حاول مجددًا.</translation>
    </message>
    <message>
        <source>Could not check the PIN: %1</source>
        <translation>تعذّر التحقق من الرمز السري: %1</translation>
    </message>
    <message>
        <source>A bracelet was tapped, but this till is locked: nothing was charged. Log in, then tap again.</source>
        <translation>مُرِّر سوار لكن الجهاز مقفل: لم يُخصم شيء. سجّل الدخول ثم مرّر السوار مجددًا.</translation>
    </message>
</context>
<context>
    <name>LookupDialog</name>
    <message>
        <source>Find student by name</source>
        <translation>البحث عن طالب بالاسم</translation>
    </message>
    <message>
        <source>Charge %1 to the student (no bracelet). Type part of the name:</source>
        <translation>خصم %1 من الطالب (دون سوار). اكتب جزءًا من الاسم:</translation>
    </message>
    <message>
        <source>name</source>
        <translation>الاسم</translation>
    </message>
    <message>
        <source>Charge (Enter)</source>
        <translation>خصم (Enter)</translation>
    </message>
    <message>
        <source>Homeroom %1</source>
        <translation>الفصل %1</translation>
    </message>
    <message>
        <source>frozen</source>
        <translation>مجمّد</translation>
    </message>
    <message>
        <source>closed</source>
        <translation>مغلق</translation>
    </message>
    <message>
        <source>Several students match: choose one with ↑/↓ or a tap, then press Enter.</source>
        <translation>أكثر من طالب بهذا الاسم: اختر واحدًا بالسهمين ↑/↓ أو بلمسة، ثم اضغط Enter.</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Cafeteria POS</source>
        <translation>نقطة بيع المقصف</translation>
    </message>
    <message>
        <source>Voided: %1 gets the money back.</source>
        <translation>أُلغي البيع: يُعاد المبلغ إلى %1.</translation>
    </message>
    <message>
        <source>The bracelet reader is not connected</source>
        <translation>قارئ الأساور غير متصل</translation>
    </message>
    <message>
        <source>Check its cable or plug it in again; bracelets cannot be read until it is back. A student can still pay by name (F3).</source>
        <translation>افحص الكابل أو أعد توصيله؛ لا تُقرأ الأساور حتى يعود. يستطيع الطالب الدفع بالاسم (F3).</translation>
    </message>
</context>
<context>
    <name>Refusals</name>
    <message>
        <source>This terminal has been revoked by the school office, so it cannot sell. Sales already saved stay on it. Call the school office.</source>
        <translation>ألغى مكتب المدرسة تفويض هذا الجهاز، فلا يمكنه البيع. المبيعات المحفوظة تبقى عليه. اتصل بمكتب المدرسة.</translation>
    </message>
    <message>
        <source>Cashier not recognised on this terminal. Please log in again.</source>
        <translation>الكاشير غير معروف على هذا الجهاز. سجّل الدخول مجددًا.</translation>
    </message>
    <message>
        <source>The cart is empty. Add at least one item.</source>
        <translation>السلة فارغة. أضف صنفًا واحدًا على الأقل.</translation>
    </message>
    <message>
        <source>An item in the cart is no longer sold here. Remove it and try again.</source>
        <translation>صنف في السلة لم يعد يُباع هنا. احذفه وحاول مجددًا.</translation>
    </message>
    <message>
        <source>This terminal&apos;s clock is behind: it shows {shows}, but this terminal has already seen {known}. Set the correct date and time, then sync before selling.</source>
        <translation>ساعة هذا الجهاز متأخرة: تُظهر {shows}، لكنه سبق أن رأى {known}. اضبط التاريخ والوقت الصحيحين، ثم زامن قبل البيع.</translation>
    </message>
    <message>
        <source>This terminal has not synced for {hours} hours (the limit is {limit}). Connect it to the network and sync before selling.</source>
        <translation>لم يُزامَن هذا الجهاز منذ {hours} ساعة (الحد {limit}). وصّله بالشبكة وزامن قبل البيع.</translation>
    </message>
    <message>
        <source>This terminal has never synced (the limit is {limit} hours without a sync). Connect it to the network and sync before selling.</source>
        <translation>لم يُزامَن هذا الجهاز قط (الحد {limit} ساعة دون مزامنة). وصّله بالشبكة وزامن قبل البيع.</translation>
    </message>
    <message>
        <source>This bracelet is not registered. Send the student to the office.</source>
        <translation>هذا السوار غير مسجّل. أرسل الطالب إلى المكتب.</translation>
    </message>
    <message>
        <source>This bracelet is blocked (lost or replaced). Send the student to the office.</source>
        <translation>هذا السوار محظور (مفقود أو مستبدل). أرسل الطالب إلى المكتب.</translation>
    </message>
    <message>
        <source>This student&apos;s account is closed. No purchases are possible.</source>
        <translation>حساب هذا الطالب مغلق. لا يمكن الشراء.</translation>
    </message>
    <message>
        <source>This student&apos;s account is frozen. Purchases are paused by the school.</source>
        <translation>حساب هذا الطالب مجمّد. أوقفت المدرسة المشتريات مؤقتًا.</translation>
    </message>
    <message>
        <source>Sales above {cap} are not allowed on this terminal. This one is {total}.</source>
        <translation>لا يُسمح على هذا الجهاز ببيع يزيد على {cap}. وهذه البيعة {total}.</translation>
    </message>
    <message>
        <source>Too much is waiting to be synced ({unsynced}; the limit is {cap}). Connect to the network and sync before selling more.</source>
        <translation>المبالغ المنتظرة للمزامنة كثيرة ({unsynced}؛ الحد {cap}). وصّل الجهاز بالشبكة وزامن قبل بيع المزيد.</translation>
    </message>
    <message>
        <source>Daily limit: {left} left today of {limit}; this sale is {total}.</source>
        <translation>الحد اليومي: المتبقي اليوم {left} من {limit}؛ وهذه البيعة {total}.</translation>
    </message>
    <message>
        <source>This is a void, not a sale: it cannot be voided.</source>
        <translation>هذا إلغاء وليس بيعًا: لا يمكن إلغاؤه.</translation>
    </message>
    <message>
        <source>{item} is not allowed for this student: the school blocked this item for this student.</source>
        <translation>{item} غير مسموح لهذا الطالب: منعت المدرسة عنه هذا الصنف.</translation>
    </message>
    <message>
        <source>{item} is not allowed for this student: the school blocked the category {category} for this student.</source>
        <translation>{item} غير مسموح لهذا الطالب: منعت المدرسة عنه فئة {category}.</translation>
    </message>
    <message>
        <source>{item} is not allowed for this student: allergy to {allergen}.</source>
        <translation>{item} غير مسموح لهذا الطالب: لديه حساسية من {allergen}.</translation>
    </message>
    <message>
        <source>Not enough balance: {available} available, the sale is {total}.</source>
        <translation>الرصيد غير كافٍ: المتاح {available}، والبيعة {total}.</translation>
    </message>
    <message>
        <source>There is no sale with this reference on this terminal to void.</source>
        <translation>لا توجد بيعة بهذا المرجع على هذا الجهاز لإلغائها.</translation>
    </message>
    <message>
        <source>The server did not accept this sale, so there is nothing to void.</source>
        <translation>لم يقبل الخادم هذه البيعة، فلا شيء لإلغائه.</translation>
    </message>
    <message>
        <source>This sale has already been voided.</source>
        <translation>أُلغيت هذه البيعة من قبل.</translation>
    </message>
</context>
<context>
    <name>ResultPanel</name>
    <message>
        <source>APPROVED</source>
        <translation>مقبول</translation>
    </message>
    <message>
        <source>REFUSED</source>
        <translation>مرفوض</translation>
    </message>
    <message>
        <source>RESTRICTED</source>
        <translation>ممنوع</translation>
    </message>
    <message>
        <source>BALANCE</source>
        <translation>الرصيد</translation>
    </message>
    <message>
        <source>VOIDED</source>
        <translation>ملغى</translation>
    </message>
    <message>
        <source>ATTENTION</source>
        <translation>تنبيه</translation>
    </message>
    <message>
        <source>SELLING STOPPED</source>
        <translation>البيع متوقف</translation>
    </message>
    <message>
        <source>No payments on this terminal</source>
        <translation>لا مدفوعات على هذا الجهاز</translation>
    </message>
    <message>
        <source>To pay %1</source>
        <translation>المطلوب %1</translation>
    </message>
    <message>
        <source>Tap bracelet</source>
        <translation>مرّر السوار</translation>
    </message>
    <message>
        <source>to pay %1</source>
        <translation>لدفع %1</translation>
    </message>
    <message>
        <source>Forgot the bracelet? Find the student by name (F3)</source>
        <translation>نسي السوار؟ ابحث عن الطالب بالاسم (F3)</translation>
    </message>
    <message>
        <source>Add items</source>
        <translation>أضف الأصناف</translation>
    </message>
    <message>
        <source>then tap the bracelet</source>
        <translation>ثم مرّر السوار</translation>
    </message>
    <message>
        <source>A tap with an empty cart shows the balance</source>
        <translation>تمرير السوار والسلة فارغة يعرض الرصيد</translation>
    </message>
    <message>
        <source>Unknown bracelet</source>
        <translation>سوار غير معروف</translation>
    </message>
    <message>
        <source>Balance %1</source>
        <translation>الرصيد %1</translation>
    </message>
    <message>
        <source>Paid %1</source>
        <translation>دُفع %1</translation>
    </message>
    <message>
        <source>was %1</source>
        <translation>كان %1</translation>
    </message>
    <message>
        <source>(saved offline, will sync)</source>
        <translation>(حُفظ دون اتصال، وستتم مزامنته)</translation>
    </message>
    <message>
        <source>Homeroom %1</source>
        <translation>الفصل %1</translation>
    </message>
</context>
<context>
    <name>SaleView</name>
    <message>
        <source>Name lookup F3</source>
        <translation>بحث بالاسم F3</translation>
    </message>
    <message>
        <source>History F4</source>
        <translation>السجل F4</translation>
    </message>
    <message>
        <source>Sync now F5</source>
        <translation>مزامنة الآن F5</translation>
    </message>
    <message>
        <source>Demo bracelets F9</source>
        <translation>أساور تجريبية F9</translation>
    </message>
    <message>
        <source>Settings F10</source>
        <translation>الإعدادات F10</translation>
    </message>
    <message>
        <source>Lock F12</source>
        <translation>قفل F12</translation>
    </message>
    <message>
        <source>Remove Del</source>
        <translation>حذف Del</translation>
    </message>
    <message>
        <source>Clear Esc</source>
        <translation>مسح Esc</translation>
    </message>
    <message>
        <source>Total</source>
        <translation>الإجمالي</translation>
    </message>
    <message>
        <source>Other</source>
        <translation>أخرى</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Till settings</source>
        <translation>إعدادات الجهاز</translation>
    </message>
    <message>
        <source>Sound volume</source>
        <translation>مستوى الصوت</translation>
    </message>
    <message>
        <source>Try</source>
        <translation>تجربة</translation>
    </message>
    <message>
        <source>Mute</source>
        <translation>كتم الصوت</translation>
    </message>
    <message>
        <source>No sounds on this till</source>
        <translation>بلا أصوات على هذا الجهاز</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>اللغة</translation>
    </message>
</context>
<context>
    <name>StatusBar</name>
    <message>
        <source>never</source>
        <translation>لم تتم بعد</translation>
    </message>
    <message>
        <source>%1 (just now)</source>
        <translation>%1 (الآن)</translation>
    </message>
    <message>
        <source>%1 (%2 min ago)</source>
        <translation>%1 (قبل %2 د)</translation>
    </message>
    <message>
        <source>%1 (%2 h ago)</source>
        <translation>%1 (قبل %2 س)</translation>
    </message>
    <message>
        <source>Not enrolled</source>
        <translation>غير مسجّل</translation>
    </message>
    <message>
        <source>Online</source>
        <translation>متصل</translation>
    </message>
    <message>
        <source>Offline</source>
        <translation>غير متصل</translation>
    </message>
    <message>
        <source>Not authorized</source>
        <translation>غير مصرّح له</translation>
    </message>
    <message>
        <source>To sync: %1 (%2)</source>
        <translation>للمزامنة: %1 (%2)</translation>
    </message>
    <message>
        <source>All synced</source>
        <translation>تمت مزامنة الكل</translation>
    </message>
    <message>
        <source>Last sync: %1</source>
        <translation>آخر مزامنة: %1</translation>
    </message>
    <message>
        <source>Live</source>
        <translation>مباشر</translation>
    </message>
    <message>
        <source>Top-ups and blocked bracelets arrive within seconds.</source>
        <translation>يصل شحن الرصيد وحظر الأساور خلال ثوانٍ.</translation>
    </message>
    <message>
        <source>Polling</source>
        <translation>تحديث دوري</translation>
    </message>
    <message>
        <source>Top-ups and blocked bracelets arrive at the next check with the server.</source>
        <translation>يصل شحن الرصيد وحظر الأساور عند التحقق التالي مع الخادم.</translation>
    </message>
    <message>
        <source>simulated</source>
        <translation>محاكى</translation>
    </message>
    <message>
        <source>keyboard wedge</source>
        <translation>لوحة مفاتيح</translation>
    </message>
    <message>
        <source>Reader (%1) connected</source>
        <translation>القارئ (%1) متصل</translation>
    </message>
    <message>
        <source>Reader connected</source>
        <translation>القارئ متصل</translation>
    </message>
    <message>
        <source>Reader (%1) NOT connected</source>
        <translation>القارئ (%1) غير متصل</translation>
    </message>
    <message>
        <source>Reader NOT connected</source>
        <translation>القارئ غير متصل</translation>
    </message>
    <message>
        <source>Cashier: %1</source>
        <translation>الكاشير: %1</translation>
    </message>
    <message>
        <source>Locked</source>
        <translation>مقفل</translation>
    </message>
</context>
<context>
    <name>Till</name>
    <message>
        <source>Log in first: the counter is locked.</source>
        <translation>سجّل الدخول أولًا: الجهاز مقفل.</translation>
    </message>
    <message>
        <source>Balance only: the cart is empty, nothing was charged.</source>
        <translation>عرض الرصيد فقط: السلة فارغة، ولم يُخصم شيء.</translation>
    </message>
    <message>
        <source>Sale voided: the money goes back to the student.</source>
        <translation>أُلغي البيع: يُعاد المبلغ إلى الطالب.</translation>
    </message>
</context>
</TS>
